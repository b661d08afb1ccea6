/** backends: move bytes to and from a storage location, and classify errors. */
export type * from './backend.js';
export { LocalBackend } from './local-backend.js';
export { MemoryBackend } from './memory-backend.js';
export {
  FAULT_KINDS,
  FAULT_OPS,
  FaultyBackend,
  type FaultKind,
  type FaultOp,
  type FaultRule,
  type FaultyBackendOptions,
} from './faulty-backend.js';
export {
  TEMP_PREFIX,
  assertObjectName,
  assertObjectPrefix,
  assertRange,
  objectNameProblem,
} from './object-name.js';
export {
  DEFAULT_RETRY_POLICY,
  RetryingBackend,
  timerSleep,
  type RetryEvent,
  type RetryPolicy,
  type RetryingBackendOptions,
  type Sleep,
} from './retrying-backend.js';
export { LimitedBackend, type LimitedBackendOptions } from './limited-backend.js';
export { CountingBackend, newBackendCounters, type BackendCounters } from './counting-backend.js';
export {
  DEFAULT_BACKEND_CONCURRENCY,
  stackBackend,
  type BackendStackOptions,
  type StackedBackend,
} from './backend-stack.js';
// The object-store backends load their SDKs on first use, through lazy-backend.ts: importing
// this face must not load them (hundreds of milliseconds each). Their types cost nothing.
export type {
  AzureBlobBackend,
  AzureBlobBackendOptions,
  AzureBlobFromUrlOptions,
  AzureRetryOptions,
} from './azure-blob-backend.js';
export {
  AZURE_URL_FORM,
  formatAzureLocation,
  parseAzureUrl,
  type AzureLocation,
} from './azure-location.js';
export type { S3Backend, S3BackendConfig } from './s3-backend.js';
export { S3_URL_FORM, parseS3Url, type S3UrlSettings } from './s3-location.js';
export { LazyBackend, lazyAzureBackend, lazyS3Backend } from './lazy-backend.js';
export { SERVER_URL_FORM, ServerBackend, type ServerBackendConfig } from './server-backend.js';
