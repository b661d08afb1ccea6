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
