import { HoldfastError } from '../core/index.js';

/**
 * Start of the name of a file that a backend is still writing. Segments starting with it are
 * reserved: `list` never shows them, so an object with such a name could never be listed.
 */
export const TEMP_PREFIX = '.tmp-';

/**
 * Says what is wrong with an object name, or `undefined` when it is valid. A valid name is a
 * relative `/`-separated path without empty, `.` or `..` segments, without NUL and without
 * segments starting with {@link TEMP_PREFIX}.
 */
export function objectNameProblem(name: string): string | undefined {
  if (name === '') return 'it is empty';
  if (name.includes('\0')) return 'it contains a NUL character';
  if (name.startsWith('/')) return 'it starts with "/"';
  for (const segment of name.split('/')) {
    if (segment === '') return 'it has an empty segment ("//" or a trailing "/")';
    // "." is refused too: on a filesystem "a/./b" would alias "a/b" and list once.
    if (segment === '.' || segment === '..') return `it has a "${segment}" segment`;
    if (segment.startsWith(TEMP_PREFIX))
      return `a segment starts with the reserved "${TEMP_PREFIX}"`;
  }
  return undefined;
}

/** Throws USAGE_INVALID unless `name` is a valid object name (see {@link objectNameProblem}). */
export function assertObjectName(name: string): void {
  const problem = objectNameProblem(name);
  if (problem !== undefined) {
    throw new HoldfastError(
      'USAGE_INVALID',
      `Invalid object name ${JSON.stringify(name)}: ${problem}. ` +
        'Object names are relative "/"-separated paths such as "packs/ab/ab12…".',
    );
  }
}

/**
 * Throws USAGE_INVALID unless `prefix` can start a valid object name. `''` lists everything; a
 * prefix may end after a `/` or in the middle of a segment, so only its complete segments are
 * checked.
 */
export function assertObjectPrefix(prefix: string): void {
  if (prefix === '') return;
  const cut = prefix.lastIndexOf('/');
  let problem: string | undefined;
  if (prefix.includes('\0')) problem = 'it contains a NUL character';
  else if (prefix.startsWith('/')) problem = 'it starts with "/"';
  else if (cut !== -1) problem = objectNameProblem(prefix.slice(0, cut));
  if (problem !== undefined) {
    throw new HoldfastError(
      'USAGE_INVALID',
      `Invalid listing prefix ${JSON.stringify(prefix)}: ${problem}. ` +
        'A prefix is the start of a relative "/"-separated object name, or "" for all objects.',
    );
  }
}

/** Throws USAGE_INVALID unless `offset` and `length` are non-negative safe integers. */
export function assertRange(offset: number, length: number): void {
  const valid = (n: number): boolean => Number.isSafeInteger(n) && n >= 0;
  if (!valid(offset) || !valid(length)) {
    throw new HoldfastError(
      'USAGE_INVALID',
      `Invalid byte range (offset ${offset}, length ${length}): both must be non-negative integers.`,
    );
  }
}
