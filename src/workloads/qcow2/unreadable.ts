import { HoldfastError } from '../../core/index.js';

/**
 * The error for a qcow2 image that cannot be read as it is — damaged, hostile, or using a
 * feature not supported — naming the image and the reason, so the message alone says what to do.
 */
export function unreadable(image: string, problem: string, cause?: unknown): HoldfastError {
  return new HoldfastError(
    'SOURCE_UNREADABLE',
    `Cannot read the qcow2 image ${image}: ${problem}.`,
    cause === undefined ? undefined : { cause },
  );
}

/** A 64-bit big-endian field as a number; values past 2^53 become `Infinity`, which no check passes. */
export function readU64(buffer: Buffer, at: number): number {
  const value = buffer.readBigUInt64BE(at);
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(value);
}
