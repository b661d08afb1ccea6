import { deriveGearTable, GEAR_WINDOW, spreadMask } from './gear-table.js';

/** Chunk size limits in bytes: `minSize < avgSize < maxSize`, `avgSize` a power of two. */
export interface ChunkerParams {
  /** No chunk except the last of a stream is shorter than this. */
  readonly minSize: number;
  /** Target mean chunk size; a power of two. */
  readonly avgSize: number;
  /** No chunk is longer than this; a cut is forced here when the content offers none. */
  readonly maxSize: number;
}

/** The chunk sizes a vault uses unless it was created with others: 512 KiB / 1 MiB / 8 MiB. */
export const DEFAULT_CHUNKER_PARAMS: ChunkerParams = Object.freeze({
  minSize: 512 * 1024,
  avgSize: 1024 * 1024,
  maxSize: 8 * 1024 * 1024,
});

/**
 * Smallest accepted `minSize`. The hash must see {@link GEAR_WINDOW} bytes before the first
 * candidate cut, and chunks this small would cost more in index entries than they save.
 */
export const MIN_CHUNK_SIZE_LIMIT = 64;

/** Largest accepted `maxSize` (1 GiB): a chunk is held in memory whole. */
export const MAX_CHUNK_SIZE_LIMIT = 1024 * 1024 * 1024;

/** Splits a byte stream into content-defined chunks. */
export interface Chunker {
  /**
   * Length of the next chunk that starts at `start` within `data[start, end)`.
   *
   * - If a cut point is found, returns its length (at least `minSize`).
   * - If `end - start >= maxSize` and no cut point was found, returns `maxSize`.
   * - If no cut is found and `end - start < maxSize`: returns -1 when `final` is false (the
   *   caller MUST supply more data and call again with the same chunk start and a larger end),
   *   or `end - start` when `final` is true (the last chunk of the stream). So the result is 0
   *   only when `start === end` and `final` is true.
   *
   * The result MUST depend only on the bytes from `start` on, never on `data` before `start`
   * nor on where `end` falls beyond the cut, so boundaries are reproducible however the stream
   * was split into reads. Callers SHOULD pass at least `maxSize` bytes when the stream has
   * them: a call that returns -1 is paid again by the next one.
   *
   * @throws RangeError when `start`/`end` are not integers with `0 <= start <= end <= data.length`.
   */
  nextCut(data: Uint8Array, start: number, end: number, final: boolean): number;
}

/**
 * FastCDC (Xia et al., USENIX ATC 2016) with normalized chunking level 2, over a 32-bit gear
 * hash `h = (h << 1) + gear[byte]` whose table is derived from a secret seed.
 *
 * Cuts before `avgSize` must match a mask of `log2(avgSize) + 2` bits, cuts after it one of
 * `log2(avgSize) - 2` bits, which narrows the spread of chunk sizes around `avgSize`. Stateless
 * after construction, so one instance may serve any number of concurrent streams.
 */
export class FastCdcChunker implements Chunker {
  /** The validated size limits this chunker cuts by. */
  readonly params: ChunkerParams;
  // Private fields rather than `private`: the table is derived from key material and must not
  // show up when the chunker is inspected or logged.
  readonly #gear: Int32Array;
  readonly #strictMask: number;
  readonly #looseMask: number;

  /**
   * @param params size limits, validated here.
   * @param seed 32 secret bytes derived from the vault key (see {@link deriveGearTable}).
   * @throws RangeError on invalid params or a seed of the wrong length.
   */
  constructor(params: ChunkerParams, seed: Uint8Array) {
    validateChunkerParams(params);
    this.params = Object.freeze({
      minSize: params.minSize,
      avgSize: params.avgSize,
      maxSize: params.maxSize,
    });
    this.#gear = deriveGearTable(seed);
    const avgBits = Math.log2(params.avgSize);
    this.#strictMask = spreadMask(avgBits + 2);
    this.#looseMask = spreadMask(avgBits - 2);
  }

  /** See {@link Chunker.nextCut}. */
  nextCut(data: Uint8Array, start: number, end: number, final: boolean): number {
    checkRange(data, start, end);
    const { minSize, avgSize, maxSize } = this.params;
    const available = end - start;
    if (available < minSize) return final ? available : -1;

    // Candidate cuts are at byte indexes [start + minSize - 1, limit): a cut after byte i gives a
    // chunk of length i + 1 - start. Bytes beyond maxSize never matter, so neither does `end`.
    const limit = start + Math.min(available, maxSize);
    const normal = Math.min(start + avgSize - 1, limit);
    let cutEnd = findCut(data, this.#gear, this.#strictMask, start + minSize - 1, normal);
    if (cutEnd < 0) cutEnd = findCut(data, this.#gear, this.#looseMask, normal, limit);
    if (cutEnd >= 0) return cutEnd - start;
    if (available >= maxSize) return maxSize;
    return final ? available : -1;
  }
}

/**
 * Splits a whole in-memory buffer into chunk lengths, in order; they sum to `data.length`.
 * Empty input gives no chunks.
 */
export function chunkLengths(chunker: Chunker, data: Uint8Array): number[] {
  const lengths: number[] = [];
  for (let start = 0; start < data.length;) {
    const length = chunker.nextCut(data, start, data.length, true);
    // A chunker that makes no progress on final data would loop forever; fail instead.
    if (length <= 0) throw new Error(`Chunker returned ${length} for final data at ${start}.`);
    lengths.push(length);
    start += length;
  }
  return lengths;
}

/**
 * Throws a RangeError saying what is wrong unless `params` are usable chunk size limits.
 * @throws RangeError
 */
export function validateChunkerParams(params: ChunkerParams): void {
  const { minSize, avgSize, maxSize } = params;
  for (const [name, value] of Object.entries({ minSize, avgSize, maxSize })) {
    if (!Number.isSafeInteger(value)) {
      throw new RangeError(`Chunker ${name} must be an integer number of bytes, got ${value}.`);
    }
  }
  if (minSize < MIN_CHUNK_SIZE_LIMIT) {
    throw new RangeError(
      `Chunker minSize must be at least ${MIN_CHUNK_SIZE_LIMIT}, got ${minSize}.`,
    );
  }
  if (maxSize > MAX_CHUNK_SIZE_LIMIT) {
    throw new RangeError(
      `Chunker maxSize must be at most ${MAX_CHUNK_SIZE_LIMIT}, got ${maxSize}.`,
    );
  }
  if (!(minSize < avgSize && avgSize < maxSize)) {
    throw new RangeError(
      `Chunker sizes must satisfy minSize < avgSize < maxSize, got ${minSize} / ${avgSize} / ${maxSize}.`,
    );
  }
  if ((avgSize & (avgSize - 1)) !== 0) {
    throw new RangeError(`Chunker avgSize must be a power of two, got ${avgSize}.`);
  }
}

function checkRange(data: Uint8Array, start: number, end: number): void {
  if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start)) {
    throw new RangeError(`Chunk range must be non-negative integers, got [${start}, ${end}).`);
  }
  if (!(start <= end && end <= data.length)) {
    throw new RangeError(`Chunk range [${start}, ${end}) is outside data of ${data.length} bytes.`);
  }
}

// Node runs little-endian almost everywhere; on a big-endian host the word path below would
// read bytes in the wrong order, so it is skipped there and every byte takes the byte loop.
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * End (exclusive) of the first byte in `[from, to)` after which the gear hash matches `mask`
 * (all mask bits zero), or -1. The hash is primed on the {@link GEAR_WINDOW} - 1 bytes before
 * `from`: older bytes have been shifted out of the 32-bit word, so the hash equals the one
 * computed from the chunk start, and everything before `minSize - 32` can be skipped. The
 * caller guarantees `from - 31` is not before the chunk start.
 *
 * This loop is where chunking spends its time, and each choice here was measured. `| 0` keeps
 * the hash a signed 32-bit integer (`>>> 0` would make doubles above 2^31). Reading aligned
 * 32-bit words and splitting them with shifts costs one bounds-checked load per four bytes
 * instead of four, which is worth about 1.5x over an unrolled byte loop.
 */
function findCut(
  data: Uint8Array,
  gear: Int32Array,
  mask: number,
  from: number,
  to: number,
): number {
  let h = 0;
  for (let i = from - (GEAR_WINDOW - 1); i < from; i++) h = ((h << 1) + gear[data[i]!]!) | 0;
  let i = from;
  while (i < to && ((data.byteOffset + i) & 3) !== 0) {
    h = ((h << 1) + gear[data[i++]!]!) | 0;
    if ((h & mask) === 0) return i;
  }
  const words = LITTLE_ENDIAN ? (to - i) >> 2 : 0;
  if (words > 0) {
    const view = new Uint32Array(data.buffer, data.byteOffset + i, words);
    for (let k = 0; k < words; k++) {
      const w = view[k]!;
      h = ((h << 1) + gear[w & 0xff]!) | 0;
      if ((h & mask) === 0) return i + 4 * k + 1;
      h = ((h << 1) + gear[(w >>> 8) & 0xff]!) | 0;
      if ((h & mask) === 0) return i + 4 * k + 2;
      h = ((h << 1) + gear[(w >>> 16) & 0xff]!) | 0;
      if ((h & mask) === 0) return i + 4 * k + 3;
      h = ((h << 1) + gear[w >>> 24]!) | 0;
      if ((h & mask) === 0) return i + 4 * k + 4;
    }
    i += 4 * words;
  }
  while (i < to) {
    h = ((h << 1) + gear[data[i++]!]!) | 0;
    if ((h & mask) === 0) return i;
  }
  return -1;
}
