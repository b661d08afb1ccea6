import { MAX_DATA_READ, type BlockReader } from './block-reader.js';
import type { BlockMap } from './block-map.js';
import { unreadable } from './damage.js';

/** A piece of a file's content: bytes read from the disk, or a stretch that reads as zeros. */
export type ContentPiece =
  | { readonly kind: 'data'; readonly offset: number; readonly bytes: Buffer }
  | { readonly kind: 'zeros'; readonly offset: number; readonly length: number };

/**
 * The content of bytes `[start, end)` of a block-mapped file, in order, as pieces. Holes and
 * unwritten extents come out as one `zeros` piece each however long, so a huge sparse file
 * costs one lookup per run, not per block; data comes in reads of at most 1 MiB. `metadata`
 * reads through the block cache (for directories and symlinks).
 */
export async function* contentPieces(
  map: BlockMap,
  blocks: BlockReader,
  range: { readonly start: number; readonly end: number; readonly inode: number },
  metadata = false,
): AsyncGenerator<ContentPiece> {
  const { start, end } = range;
  const size = blocks.blockSize;
  const stop = Math.ceil(end / size);
  const perRead = Math.max(1, MAX_DATA_READ / size);
  let logical = Math.floor(start / size);
  while (logical < stop) {
    const run = await map.run(logical);
    if (run.logical !== logical || run.length < 1)
      throw unreadable(`inode ${range.inode}'s block map is inconsistent at block ${logical}`);
    const length = Math.min(run.length, stop - logical);
    if (run.kind === 'zeros') {
      const from = Math.max(start, logical * size);
      yield {
        kind: 'zeros',
        offset: from,
        length: Math.min(end, (logical + length) * size) - from,
      };
    } else {
      for (let done = 0; done < length; done += perRead) {
        const count = Math.min(perRead, length - done);
        const where = () => `inode ${range.inode}'s block ${logical + done}`;
        const bytes = metadata
          ? await blocks.metadata(run.physical + done, count, where)
          : await blocks.data(run.physical + done, count, where);
        const first = (logical + done) * size;
        const from = Math.max(start, first);
        const to = Math.min(end, first + count * size);
        yield { kind: 'data', offset: from, bytes: bytes.subarray(from - first, to - first) };
      }
    }
    logical += length;
  }
}

/** Bytes `[start, end)` of a block-mapped file in one buffer, zeros where it has none. */
export async function readContent(
  map: BlockMap,
  blocks: BlockReader,
  range: { readonly start: number; readonly end: number; readonly inode: number },
): Promise<Buffer> {
  const out = Buffer.alloc(Math.max(0, range.end - range.start));
  for await (const piece of contentPieces(map, blocks, range))
    if (piece.kind === 'data') piece.bytes.copy(out, piece.offset - range.start);
  return out;
}
