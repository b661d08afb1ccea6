import { HoldfastError } from '../../core/index.js';

/** SOURCE_UNREADABLE for damage found in an ext file system, naming what is wrong and where. */
export function unreadable(what: string): HoldfastError {
  return new HoldfastError('SOURCE_UNREADABLE', `Cannot read the ext4 file system: ${what}.`);
}

/** RESOURCE_NOT_FOUND for a path the file system does not hold (or holds as a non-directory). */
export function notFound(path: string, why: string): HoldfastError {
  return new HoldfastError('RESOURCE_NOT_FOUND', `${path}: ${why} in the ext4 file system.`);
}

/** USAGE_INVALID for a request the reader will not serve (a path too long, a read too big). */
export function badRequest(what: string): HoldfastError {
  return new HoldfastError('USAGE_INVALID', `${what}.`);
}

/** `lo + hi·2³²` as a number; values past 2⁵³ become Infinity, which every bound check refuses. */
export function join64(lo: number, hi: number): number {
  const value = hi * 2 ** 32 + lo;
  return value > Number.MAX_SAFE_INTEGER ? Infinity : value;
}
