import type { ByteRange } from './file-extents.js';
import type { ChunkJob, FileContent, ReadAt } from './chunk-job.js';
import { cutImageBlock, IMAGE_BLOCK } from './image-blocks.js';
import { releaseBuffer } from './release-buffer.js';
import { appendPiece, type ContentPiece } from './tree.js';

/** Names disk image files go by: raw, qcow2, VMware, VirtualBox and Hyper-V images. */
const DISK_IMAGE_NAME = /\.(?:img|raw|qcow2?|vmdk|vdi|vhdx?)$/i;

/** Bytes per read: whole blocks; the next read is in flight while these are cut. */
const READ_SIZE = 8 * IMAGE_BLOCK;

/**
 * True when a file is cut in aligned blocks, as a disk is, instead of by content
 * (docs/vault-format.md §3): it is named like a disk image, or the file system's extent map
 * (`data`, when known) shows holes in its first `size` bytes. Files like these are rewritten in
 * place, never shifted by insertions, so content-defined cuts would find nothing aligned blocks
 * do not, at the price of a cut-point search over every byte.
 */
export function cutsAsDiskImage(
  path: Buffer,
  size: number,
  data: readonly ByteRange[] | undefined,
): boolean {
  // latin1 maps every byte to one character, so the suffix matches whatever the name's encoding.
  if (DISK_IMAGE_NAME.test(path.toString('latin1'))) return true;
  return data !== undefined && data.reduce((n, r) => n + r.length, 0) < size;
}

/** What {@link chunkImageFile} needs of a chunking job. */
export type ImageChunkJob = Pick<ChunkJob, 'sink' | 'onBytes' | 'signal'>;

/**
 * Reads a file in windows of whole {@link IMAGE_BLOCK}s (one read in flight while the last is
 * cut) and cuts each block as {@link cutImageBlock} does, so the blobs are those a machine
 * backup of the same disk stores. `data`, when known, lists where the file's first `size` bytes
 * may hold data: blocks wholly outside it are holes without a read, a zero fill or a compare
 * (`read` SHOULD then be a {@link skippingHoles} reader, which fills the rest of the holes).
 * Past `size` everything is read, since the file may have grown. Exported for tests.
 */
export async function chunkImageFile(
  read: ReadAt,
  size: number,
  data: readonly ByteRange[] | undefined,
  job: ImageChunkJob,
): Promise<FileContent> {
  const { sink, onBytes, signal } = job;
  const isHole = (from: number, to: number): boolean =>
    data !== undefined && to <= size && !overlapsData(data, from, to);
  // Fills a window at file offset `at`; returns its length, short only at the end of the file.
  // Blocks known to be holes are neither read nor zeroed: cutting skips them. Runs of other
  // blocks are read with one request each.
  const fill = async (buffer: Buffer, at: number): Promise<number> => {
    signal?.throwIfAborted();
    let n = 0;
    while (n < READ_SIZE) {
      if (isHole(at + n, at + n + IMAGE_BLOCK)) {
        n += IMAGE_BLOCK;
        continue;
      }
      let runEnd = n + IMAGE_BLOCK;
      while (runEnd < READ_SIZE && !isHole(at + runEnd, at + runEnd + IMAGE_BLOCK))
        runEnd += IMAGE_BLOCK;
      while (n < runEnd) {
        const got = await read(buffer, n, runEnd - n, at + n);
        if (got === 0) return n;
        n += got;
      }
    }
    return n;
  };
  const content: ContentPiece[] = [];
  const buffers = [0, 1].map(() => Buffer.allocUnsafeSlow(READ_SIZE));
  let pending = fill(buffers[0]!, 0);
  let position = 0;
  try {
    for (let next = 0; ; next = 1 - next) {
      const n = await pending;
      onBytes(n);
      const at = position;
      position += n;
      // A window that is not full ends the file: a read returned nothing more.
      const more = n === READ_SIZE;
      if (more) pending = fill(buffers[1 - next]!, position);
      const buffer = buffers[next]!;
      for (let b = 0; b < n; b += IMAGE_BLOCK) {
        const length = Math.min(IMAGE_BLOCK, n - b);
        if (isHole(at + b, at + b + length)) {
          appendPiece(content, length);
          continue;
        }
        for (const piece of cutImageBlock(buffer.subarray(b, b + length))) {
          if ('hole' in piece) appendPiece(content, piece.hole);
          else content.push((await sink.save('data', piece.data)).id);
        }
      }
      if (!more) return { content, size: position };
    }
  } finally {
    // Never leave a read running into a buffer (or a handle the caller is about to close).
    await pending.catch(() => undefined);
    for (const buffer of buffers) releaseBuffer(buffer);
  }
}

/** True when any of the sorted, disjoint `ranges` overlaps `[from, to)`. */
function overlapsData(ranges: readonly ByteRange[], from: number, to: number): boolean {
  // The first range that ends after `from`, by binary search: windows are asked about ahead of
  // the blocks of the window before, so a forward-only cursor would not do.
  let low = 0;
  let high = ranges.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    const r = ranges[mid]!;
    if (r.offset + r.length <= from) low = mid + 1;
    else high = mid;
  }
  const first = ranges[low];
  return first !== undefined && first.offset < to;
}
