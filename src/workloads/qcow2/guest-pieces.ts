import { throwIfAborted } from '../../core/index.js';
import type { DiskReader } from '../partition-table.js';
import type { GuestPiece } from './qcow2-writer.js';

/** A guest range to copy; ranges marked `zero` are skipped (they read as zeros anyway). */
export interface GuestRange {
  readonly offset: number;
  readonly length: number;
  readonly zero?: boolean;
}

/**
 * The bytes of `ranges` (in increasing order) read from `disk` in pieces of at most
 * `chunkSize` bytes: the input {@link writeQcow2} takes, from any disk and its data extents
 * (a qcow2 image's `allocatedExtents()`, or one range covering a raw disk).
 */
export async function* readGuestPieces(
  disk: DiskReader,
  ranges: AsyncIterable<GuestRange> | Iterable<GuestRange>,
  options: { chunkSize?: number; signal?: AbortSignal } = {},
): AsyncGenerator<GuestPiece> {
  const chunkSize = options.chunkSize ?? 1024 * 1024;
  for await (const range of ranges) {
    if (range.zero === true) continue;
    for (let done = 0; done < range.length; done += chunkSize) {
      throwIfAborted(options.signal);
      const offset = range.offset + done;
      yield { offset, data: await disk.read(offset, Math.min(chunkSize, range.length - done)) };
    }
  }
}
