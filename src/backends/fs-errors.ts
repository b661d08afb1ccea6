import { HoldfastError } from '../core/index.js';

/** What a filesystem call was doing when it failed; it decides how an error reads. */
export type FsAction = 'read' | 'write' | 'delete' | 'list';

const VERBS: Record<FsAction, string> = {
  read: 'reading',
  write: 'writing',
  delete: 'deleting',
  list: 'listing',
};

/** The errno code (`ENOENT`, …) of a Node.js system error, if it has one. */
export function errnoCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('code' in error)) return undefined;
  return typeof error.code === 'string' ? error.code : undefined;
}

/** BACKEND_NOT_FOUND for `name`, with a hint on what to check. */
export function notFoundError(name: string, location: string, cause?: unknown): HoldfastError {
  return new HoldfastError(
    'BACKEND_NOT_FOUND',
    `Object "${name}" does not exist in ${location}. Check that the location points at the right vault.`,
    { cause },
  );
}

/**
 * Turns a filesystem error into the HoldfastError a caller can branch on. This is the one place
 * that knows errno codes; everything above sees only backend codes.
 */
export function classifyFsError(
  error: unknown,
  action: FsAction,
  name: string,
  location: string,
): HoldfastError {
  if (error instanceof HoldfastError) return error;
  const code = errnoCode(error);
  const what = `${VERBS[action]} "${name}" in ${location}`;
  switch (code) {
    case 'ENOENT':
      return notFoundError(name, location, error);
    case 'ENOTDIR':
    case 'EISDIR':
    case 'EEXIST':
      // A file where a directory should be (or the reverse; mkdir reports EEXIST) means, for a
      // write, that something in the way must be moved first, and for a read that the object
      // is not there.
      if (action === 'write') {
        return new HoldfastError(
          'BACKEND_IO',
          `Cannot write "${name}" in ${location}: a file or directory is in the way (${code}). ` +
            'Move aside whatever has the same name as this object or one of its parent folders.',
          { cause: error },
        );
      }
      if (code !== 'EEXIST') return notFoundError(name, location, error);
      return ioError(error, code, what);
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new HoldfastError(
        'BACKEND_PERMISSION',
        `Permission denied ${what} (${code}). Check that the user running Holdfast may read and ` +
          'write this directory and that it is not mounted read-only.',
        { cause: error },
      );
    case 'ENOSPC':
    case 'EDQUOT':
      return new HoldfastError(
        'BACKEND_NO_SPACE',
        `No space left ${what} (${code}). Free space or raise the quota, then retry.`,
        { cause: error },
      );
    case 'ABORT_ERR':
      return new HoldfastError('CANCELLED', 'The operation was cancelled.', { cause: error });
    default:
      return ioError(error, code, what);
  }
}

function ioError(error: unknown, code: string | undefined, what: string): HoldfastError {
  return new HoldfastError(
    'BACKEND_IO',
    `I/O error ${what} (${code ?? 'unknown error'}). Check the disk and the system log, then retry.`,
    { cause: error },
  );
}
