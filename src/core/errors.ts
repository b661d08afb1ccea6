/**
 * Every error code Holdfast raises, grouped by area (`AREA_REASON`). Callers branch on these
 * codes, never on message text. `docs/errors.md` lists each one; a test keeps both in sync.
 */
export const ERROR_CODES = [
  'USAGE_INVALID',
  'INTERNAL',
  'CANCELLED',
  'BACKEND_NOT_FOUND',
  'BACKEND_EXISTS',
  'BACKEND_PERMISSION',
  'BACKEND_NO_SPACE',
  'BACKEND_TRANSIENT',
  'BACKEND_IO',
  'VAULT_NOT_FOUND',
  'VAULT_EXISTS',
  'VAULT_VERSION_UNSUPPORTED',
  'VAULT_WRONG_KEY',
  'VAULT_INTEGRITY',
  'VAULT_LOCKED',
  'VAULT_LAST_KEY',
  'POINT_NOT_FOUND',
  'POINT_AMBIGUOUS',
  'SOURCE_UNREADABLE',
  'RESTORE_UNSAFE_ENTRY',
  'RESTORE_TARGET_INVALID',
  'RESTORE_WRITE_FAILED',
  'PASSWORD_MISSING',
  'REQUEST_INVALID',
  'REQUEST_TOO_LARGE',
  'AUTH_REQUIRED',
  'RESOURCE_NOT_FOUND',
  'RESOURCE_EXISTS',
  'RESOURCE_IN_USE',
  'STATE_CONFLICT',
  'SETTING_LOCKED',
  'POLICY_INVALID',
  'JOB_NOT_CANCELLABLE',
  'NOTIFY_FAILED',
  'SERVER_UNREACHABLE',
  'SERVER_SHUTTING_DOWN',
  'VAULT_IMMUTABLE',
  'VAULT_APPEND_ONLY',
  'ACCESS_DENIED',
] as const;

/** One of {@link ERROR_CODES}. */
export type ErrorCode = (typeof ERROR_CODES)[number];

/**
 * The one error class of Holdfast: a stable `code`, a message that says what was wrong and what
 * to do, and the standard `cause` chain for `--debug`.
 */
export class HoldfastError extends Error {
  override readonly name = 'HoldfastError';
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** True when `error` is a {@link HoldfastError}, optionally with the given code. */
export function isHoldfastError(error: unknown, code?: ErrorCode): error is HoldfastError {
  return error instanceof HoldfastError && (code === undefined || error.code === code);
}

/** Throws CANCELLED when the signal is aborted; call before every write. */
export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) {
    throw new HoldfastError('CANCELLED', 'The operation was cancelled.', { cause: signal.reason });
  }
}

/** A short human description of any thrown value, for per-item error reports. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/**
 * HTTP status for each code, used by the REST API. A `Record` over {@link ErrorCode}: adding a
 * code without a status does not compile.
 */
export const HTTP_STATUS: Readonly<Record<ErrorCode, number>> = {
  USAGE_INVALID: 400,
  INTERNAL: 500,
  CANCELLED: 499,
  BACKEND_NOT_FOUND: 404,
  BACKEND_EXISTS: 409,
  BACKEND_PERMISSION: 403,
  BACKEND_NO_SPACE: 507,
  BACKEND_TRANSIENT: 503,
  BACKEND_IO: 502,
  VAULT_NOT_FOUND: 404,
  VAULT_EXISTS: 409,
  VAULT_VERSION_UNSUPPORTED: 422,
  VAULT_WRONG_KEY: 401,
  VAULT_INTEGRITY: 422,
  VAULT_LOCKED: 423,
  VAULT_LAST_KEY: 409,
  POINT_NOT_FOUND: 404,
  POINT_AMBIGUOUS: 409,
  SOURCE_UNREADABLE: 422,
  RESTORE_UNSAFE_ENTRY: 422,
  RESTORE_TARGET_INVALID: 400,
  RESTORE_WRITE_FAILED: 507,
  PASSWORD_MISSING: 401,
  REQUEST_INVALID: 400,
  REQUEST_TOO_LARGE: 413,
  AUTH_REQUIRED: 401,
  RESOURCE_NOT_FOUND: 404,
  RESOURCE_EXISTS: 409,
  RESOURCE_IN_USE: 409,
  STATE_CONFLICT: 409,
  SETTING_LOCKED: 409,
  POLICY_INVALID: 400,
  JOB_NOT_CANCELLABLE: 409,
  NOTIFY_FAILED: 502,
  SERVER_UNREACHABLE: 503,
  SERVER_SHUTTING_DOWN: 503,
  VAULT_IMMUTABLE: 409,
  VAULT_APPEND_ONLY: 409,
  ACCESS_DENIED: 403,
};
