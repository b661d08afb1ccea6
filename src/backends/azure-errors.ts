import { HoldfastError } from '../core/index.js';

/** What an Azure Blob call was doing when it failed; it decides how an error reads. */
export type AzureAction = 'read' | 'write' | 'conditional-write' | 'delete' | 'list' | 'stat';

/** What {@link classifyAzureError} needs to know besides the error itself. */
export interface AzureErrorContext {
  readonly action: AzureAction;
  /** The object name, or the listing prefix (`''` for everything). */
  readonly name: string;
  /** The location without credentials (`azure://account/container/prefix`). */
  readonly location: string;
  /** The caller's signal was aborted. */
  readonly cancelled?: boolean;
  /** The operation's own time limit ran out, after this many milliseconds. */
  readonly timedOutAfterMs?: number;
}

const VERBS: Record<AzureAction, string> = {
  read: 'reading',
  write: 'writing',
  'conditional-write': 'writing',
  delete: 'deleting',
  list: 'listing',
  stat: 'reading the size of',
};

const NOT_FOUND_CODES = new Set(['BlobNotFound', 'ContainerNotFound', 'ResourceNotFound']);
const EXISTS_CODES = new Set(['BlobAlreadyExists', 'ConditionNotMet']);
const PERMISSION_CODES = new Set([
  'AuthenticationFailed',
  'AuthorizationFailure',
  'AuthorizationPermissionMismatch',
  'AuthorizationProtocolMismatch',
  'AuthorizationResourceTypeMismatch',
  'AuthorizationServiceMismatch',
  'AuthorizationSourceIPMismatch',
  'InsufficientAccountPermissions',
  'AccountIsDisabled',
]);
const TRANSIENT_CODES = new Set([
  'ServerBusy',
  'OperationTimedOut',
  'InternalError',
  // Put Block List after another writer's Put Blob or Put Block List of the same name: the
  // service dropped this upload's uncommitted blocks. A retry uploads them again.
  'InvalidBlockList',
]);
/** Network failures (Node errno codes and the HTTP pipeline's own). */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'ENETDOWN',
  'REQUEST_SEND_ERROR',
]);

/** The HTTP status and Azure error code of an SDK error (`RestError`), when it has them. */
export function azureErrorParts(error: unknown): { status?: number; code?: string } {
  if (typeof error !== 'object' || error === null) return {};
  const record = error as { statusCode?: unknown; code?: unknown; details?: unknown };
  const parts: { status?: number; code?: string } = {};
  if (typeof record.statusCode === 'number') parts.status = record.statusCode;
  if (typeof record.code === 'string') parts.code = record.code;
  // HEAD answers carry no body: the SDK puts the x-ms-error-code header in `details` only.
  else if (typeof record.details === 'object' && record.details !== null) {
    const errorCode = (record.details as { errorCode?: unknown }).errorCode;
    if (typeof errorCode === 'string') parts.code = errorCode;
  }
  return parts;
}

/** True when `error` says the container itself is missing. */
export function isContainerNotFound(error: unknown): boolean {
  return azureErrorParts(error).code === 'ContainerNotFound';
}

/**
 * Turns an error from the Azure SDK into the HoldfastError a caller can branch on. This is the
 * one place that knows Azure's status and error codes. Messages name the object and the location
 * and never include the SDK's own text, which may quote request URLs (and with them a SAS).
 */
export function classifyAzureError(error: unknown, context: AzureErrorContext): HoldfastError {
  if (error instanceof HoldfastError) return error;
  const { action, name, location } = context;
  const what =
    action === 'list' && name === ''
      ? `listing ${location}`
      : `${VERBS[action]} "${name}${action === 'list' ? '…' : ''}" in ${location}`;
  const make = (code: HoldfastError['code'], message: string): HoldfastError =>
    new HoldfastError(code, message, { cause: error });
  if (context.cancelled === true) return make('CANCELLED', 'The operation was cancelled.');
  if (context.timedOutAfterMs !== undefined) {
    return make(
      'BACKEND_TRANSIENT',
      `Timed out ${what} after ${Math.round(context.timedOutAfterMs / 1000)} s without an answer ` +
        'from Azure. Check the network and the service status, then retry.',
    );
  }
  const { status, code } = azureErrorParts(error);
  const answered =
    status !== undefined
      ? `Azure answered ${status}${code === undefined ? '' : ` ${code}`}`
      : `no answer from Azure: ${code ?? 'unknown error'}`;
  if (code === 'ContainerNotFound') {
    return make(
      'BACKEND_NOT_FOUND',
      `The container of ${location} does not exist (${what}). Check the account and container ` +
        'names, or create the container (initialising a vault creates it).',
    );
  }
  if (status === 404 || (code !== undefined && NOT_FOUND_CODES.has(code))) {
    return make(
      'BACKEND_NOT_FOUND',
      `Object "${name}" does not exist in ${location}. Check that the location points at the ` +
        'right vault (and that its container exists).',
    );
  }
  if (action === 'conditional-write' && (status === 409 || status === 412)) {
    if (code === undefined || EXISTS_CODES.has(code)) {
      return make(
        'BACKEND_EXISTS',
        `Object "${name}" already exists in ${location}; it was left unchanged.`,
      );
    }
  }
  if (status === 403 || (code !== undefined && PERMISSION_CODES.has(code))) {
    return make(
      'BACKEND_PERMISSION',
      `Azure refused access ${what} (${answered}). Check the account key, connection string ` +
        'or SAS token (its permissions, expiry and allowed IP addresses) and the network rules ' +
        'of the storage account.',
    );
  }
  if (
    status === 408 ||
    status === 429 ||
    (status !== undefined && status >= 500) ||
    (code !== undefined && (TRANSIENT_CODES.has(code) || NETWORK_CODES.has(code))) ||
    // A download resumed after a dropped connection found the object replaced meanwhile.
    (status === 412 && action === 'read')
  ) {
    return make(
      'BACKEND_TRANSIENT',
      `Temporary failure ${what} (${answered}). Retry later; if it persists, check the network ` +
        'and the Azure service status.',
    );
  }
  if (code === 'ENOTFOUND') {
    return make(
      'BACKEND_IO',
      `Cannot reach Azure ${what}: the host name does not resolve (ENOTFOUND). Check the ` +
        'account name and the blob endpoint.',
    );
  }
  return make(
    'BACKEND_IO',
    `Azure request failed ${what} (${answered}). Check the location and the storage account, ` +
      'then retry; --debug shows the service error.',
  );
}
