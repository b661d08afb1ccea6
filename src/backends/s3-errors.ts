import { HoldfastError } from '../core/index.js';

/** What an S3 call was doing when it failed; it decides how an error reads. */
export type S3Action = 'read' | 'write' | 'delete' | 'list';

const VERBS: Record<S3Action, string> = {
  read: 'Reading',
  write: 'Writing',
  delete: 'Deleting',
  list: 'Listing',
};

/** What {@link classifyS3Error} needs to know besides the error. */
export interface S3ErrorContext {
  readonly action: S3Action;
  /** The object name (or listing prefix) as the caller gave it. */
  readonly name: string;
  /** The backend's credential-free location. */
  readonly location: string;
  /** The call was a conditional write, so 412 means "already exists". */
  readonly conditional?: boolean;
  /** Cancellation wins over whatever error the abort produced. */
  readonly signal?: AbortSignal | undefined;
  /** Strings to blank out of the server's message (the access key id, secret, session token). */
  readonly secrets?: readonly string[];
}

const NOT_FOUND = new Set(['NoSuchKey', 'NotFound']);
const PERMISSION = new Set([
  'AccessDenied',
  'AllAccessDisabled',
  'AccountProblem',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'InvalidToken',
  'TokenRefreshRequired',
  'CredentialsProviderError',
]);
const NO_SPACE = new Set(['QuotaExceeded', 'XMinioStorageFull', 'XMinioAdminBucketQuotaExceeded']);
const TRANSIENT_NAMES = new Set([
  'SlowDown',
  'ServiceUnavailable',
  'InternalError',
  'RequestTimeout',
  'RequestTimeoutException',
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'TooManyRequests',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'BandwidthLimitExceeded',
  'ConditionalRequestConflict',
  'OperationAborted',
  'TimeoutError',
]);
const TRANSIENT_ERRNO = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENETUNREACH',
  'ENETDOWN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
]);

/**
 * A credential-free summary of an SDK failure, kept as the `cause` of the errors this module
 * makes. SDK errors carry fields a server echoes back (`AWSAccessKeyId`, `StringToSign`) and raw
 * responses; none of that may reach a log, so they are not kept.
 */
export class S3Failure extends Error {
  override readonly name = 'S3Failure';
  /** The S3 error code (`AccessDenied`, …) or the SDK error name. */
  readonly s3Code: string | undefined;
  readonly httpStatus: number | undefined;
  readonly requestId: string | undefined;
  /** The Node.js system error code (`ECONNRESET`, …), if any. */
  readonly errno: string | undefined;

  constructor(facts: ErrorFacts, message: string) {
    super(message);
    this.s3Code = facts.code;
    this.httpStatus = facts.status;
    this.requestId = facts.requestId;
    this.errno = facts.errno;
  }
}

interface ErrorFacts {
  readonly code: string | undefined;
  readonly status: number | undefined;
  readonly requestId: string | undefined;
  readonly errno: string | undefined;
  readonly retryable: boolean;
  readonly message: string;
}

/**
 * Turns an error from the S3 SDK into the HoldfastError a caller can branch on: missing →
 * BACKEND_NOT_FOUND, 412 on a conditional write → BACKEND_EXISTS, refused credentials →
 * BACKEND_PERMISSION, quota → BACKEND_NO_SPACE, 5xx/throttling/timeouts/resets →
 * BACKEND_TRANSIENT, anything else BACKEND_IO. This is the one place that knows S3 error codes.
 */
export function classifyS3Error(error: unknown, context: S3ErrorContext): HoldfastError {
  if (error instanceof HoldfastError) return error;
  const facts = factsOf(error);
  const cause = new S3Failure(facts, redact(facts.message, context.secrets ?? []));
  if (context.signal?.aborted === true || facts.code === 'AbortError') {
    return new HoldfastError('CANCELLED', 'The operation was cancelled.', { cause });
  }
  const { code, status } = facts;
  const what = `${VERBS[context.action]} "${context.name}" in ${context.location}`;
  const detail = describeFacts(facts);
  const make = (kind: HoldfastError['code'], text: string): HoldfastError =>
    new HoldfastError(kind, text, { cause });

  if (code === 'NoSuchBucket') {
    return make(
      'BACKEND_IO',
      `${what} failed: the bucket does not exist (${detail}). Create the bucket, or correct ` +
        'the bucket name and endpoint.',
    );
  }
  // A 404 on a write is a vanished multipart upload (NoSuchUpload), not a missing object.
  if (context.action !== 'write' && (NOT_FOUND.has(code ?? '') || status === 404)) {
    return make(
      'BACKEND_NOT_FOUND',
      `Object "${context.name}" does not exist in ${context.location}. Check that the location ` +
        'points at the right vault.',
    );
  }
  if ((status === 412 || code === 'PreconditionFailed') && context.conditional === true) {
    return make(
      'BACKEND_EXISTS',
      `Object "${context.name}" already exists in ${context.location}; it was left unchanged.`,
    );
  }
  if (code === 'NotImplemented' && context.conditional === true) {
    return make(
      'BACKEND_IO',
      `${what} failed: the server does not support conditional writes (${detail}). ` +
        'Configure the location with conditional-put=false.',
    );
  }
  // Before the permission check: some servers send quota errors as 403.
  if (NO_SPACE.has(code ?? '') || status === 507) {
    return make(
      'BACKEND_NO_SPACE',
      `${what} failed: the storage is full or over its quota (${detail}). Free space or raise ` +
        'the quota, then retry.',
    );
  }
  if (PERMISSION.has(code ?? '') || status === 401 || status === 403) {
    return make(
      'BACKEND_PERMISSION',
      `${what} was refused (${detail}). Check the access key (AWS_ACCESS_KEY_ID/` +
        'AWS_SECRET_ACCESS_KEY or the credentials file), that it may use this bucket and prefix, ' +
        "and that this machine's clock is correct.",
    );
  }
  if (isTransient(facts)) {
    return make(
      'BACKEND_TRANSIENT',
      `${what} failed temporarily (${detail}). The server is busy, unreachable or slow; retry ` +
        'later, and check the endpoint and network if it persists.',
    );
  }
  return make(
    'BACKEND_IO',
    `${what} failed (${detail}). Check the endpoint, bucket and server logs, then retry.`,
  );
}

function isTransient(facts: ErrorFacts): boolean {
  const { code, status, errno } = facts;
  if (status !== undefined && (status >= 500 || status === 429 || status === 408)) return true;
  if (TRANSIENT_NAMES.has(code ?? '') || TRANSIENT_ERRNO.has(errno ?? '')) return true;
  return facts.retryable;
}

function factsOf(error: unknown): ErrorFacts {
  const record = (typeof error === 'object' && error !== null ? error : {}) as Record<
    string,
    unknown
  >;
  const metadata = (record['$metadata'] ?? {}) as Record<string, unknown>;
  const text = (value: unknown): string | undefined =>
    typeof value === 'string' && value !== '' ? value : undefined;
  const status = metadata['httpStatusCode'];
  const errno = text(record['code']);
  const name = text(record['name']);
  return {
    // Plain Node.js errors are all named "Error"; their errno says more.
    code: text(record['Code']) ?? (name === 'Error' ? undefined : name),
    status: typeof status === 'number' ? status : undefined,
    requestId: text(metadata['requestId']),
    errno: errno !== undefined && /^E[A-Z_]+$/.test(errno) ? errno : undefined,
    retryable: record['$retryable'] !== undefined && record['$retryable'] !== null,
    message: text(record['message']) ?? String(error),
  };
}

/** `HTTP 503, SlowDown` or `ECONNRESET`: only tokens, never the server's free text. */
function describeFacts(facts: ErrorFacts): string {
  const parts: string[] = [];
  if (facts.status !== undefined && facts.status > 0) parts.push(`HTTP ${facts.status}`);
  // A code is shown only when it looks like one, so a hostile server cannot inject text here.
  if (facts.code !== undefined && /^[A-Za-z0-9.]{1,64}$/.test(facts.code)) parts.push(facts.code);
  if (facts.errno !== undefined && facts.errno !== facts.code) parts.push(facts.errno);
  return parts.length === 0 ? 'unknown error' : parts.join(', ');
}

/** Blanks out every secret and any SigV4 credential scope a server echoed into its message. */
function redact(message: string, secrets: readonly string[]): string {
  let result = message.replace(/Credential=[^\s,]+/g, 'Credential=[redacted]');
  for (const secret of secrets) {
    if (secret !== '') result = result.split(secret).join('[redacted]');
  }
  return result;
}

/** True when `error` carries the S3 error code `code`, or the HTTP status `status` if given. */
export function s3ErrorMatches(error: unknown, code: string, status?: number): boolean {
  const facts = factsOf(error);
  return facts.code === code || (status !== undefined && facts.status === status);
}
