import { open, type FileHandle } from 'node:fs/promises';
import { HoldfastError } from '../core/index.js';
import type { ByteRange } from './byte-ranges.js';
import { fileDataExtents } from '../engine/index.js';
import type { DiskReader } from './partition-table.js';

/** A disk image file or block device opened for reading, with its size. */
export interface OpenDisk extends DiskReader {
  close(): Promise<void>;
}

/**
 * Opens an image file or a block device read-only. The size is the file's length, or for a
 * block device the end found by seeking (stat says 0 for devices). Short reads are errors: a
 * disk that shrinks while read is not read on.
 */
export async function openDisk(path: string): Promise<OpenDisk> {
  const handle = await open(path, 'r');
  try {
    const stats = await handle.stat();
    const size = stats.isBlockDevice() ? await sizeByReading(handle) : stats.size;
    return {
      size,
      read: async (offset, length) => {
        if (offset < 0 || length < 0 || offset + length > size)
          throw new HoldfastError(
            'SOURCE_UNREADABLE',
            `Read of ${length} bytes at ${offset} is outside the ${size}-byte disk ${path}.`,
          );
        // Not zeroed first: a short read is an error, so every byte returned was read.
        const buffer = Buffer.allocUnsafe(length);
        const { bytesRead } = await handle.read(buffer, 0, length, offset);
        if (bytesRead !== length)
          throw new HoldfastError(
            'SOURCE_UNREADABLE',
            `${path} ended after ${offset + bytesRead} bytes while reading; it shrank?`,
          );
        return buffer;
      },
      // Block devices have no extent map; a regular file's holes need not be read.
      ...(stats.isFile() ? { dataExtents: () => fileDataExtents(path, stats) } : {}),
      close: () => handle.close(),
    };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/**
 * The length of what `handle` reads, found by bisection on one-byte reads (about 2·log2(size)
 * of them): block devices report size 0 in stat, and this needs no platform-specific ioctl.
 */
export async function sizeByReading(handle: FileHandle): Promise<number> {
  const probe = Buffer.alloc(1);
  const readable = async (at: number): Promise<boolean> =>
    (await handle.read(probe, 0, 1, at)).bytesRead === 1;
  if (!(await readable(0))) return 0;
  let high = 1;
  while (await readable(high - 1)) high *= 2;
  let low = high / 2;
  while (low < high) {
    const middle = Math.floor((low + high) / 2);
    if (await readable(middle)) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** How {@link readRanges} reads. */
export interface RangeReading<T> {
  /** Largest single read. */
  readonly readSize: number;
  /** Reads (with their `prepare`) in flight at once. */
  readonly depth: number;
  /** Work done on each read as soon as it arrives, in any order (e.g. hashing on threads). */
  readonly prepare: (data: Buffer, offset: number) => Promise<T>;
  readonly signal?: AbortSignal;
}

/**
 * Reads `ranges` of `disk` (in increasing order) in pieces of at most `readSize` bytes with
 * `depth` reads and their `prepare` in flight, across range boundaries: a sparse disk's data is
 * often a thousand short extents, and one read at a time would wait on each. `onRead` gets the
 * prepared reads in disk order.
 */
export async function readRanges<T>(
  disk: DiskReader,
  ranges: readonly ByteRange[],
  reading: RangeReading<T>,
  onRead: (offset: number, length: number, prepared: T) => Promise<void>,
): Promise<void> {
  const pieces = (function* () {
    for (const r of ranges)
      for (let at = r.offset; at < r.offset + r.length; at += reading.readSize)
        yield { at, length: Math.min(reading.readSize, r.offset + r.length - at) };
  })();
  const inFlight: Array<Promise<{ at: number; length: number; prepared: T }>> = [];
  const start = (): boolean => {
    const next = pieces.next();
    if (next.done) return false;
    const { at, length } = next.value;
    const work = disk
      .read(at, length)
      .then((data) => reading.prepare(data, at))
      .then((prepared) => ({ at, length, prepared }));
    // A failure surfaces when its turn comes; until then it must not go unhandled.
    work.catch(() => undefined);
    inFlight.push(work);
    return true;
  };
  try {
    while (inFlight.length < reading.depth && start());
    while (inFlight.length > 0) {
      reading.signal?.throwIfAborted();
      const { at, length, prepared } = await inFlight.shift()!;
      start();
      await onRead(at, length, prepared);
    }
  } finally {
    // Never leave reads running into buffers (or a handle the caller is about to close).
    await Promise.allSettled(inFlight);
  }
}
