import { isAllZero } from '../core/index.js';
import { isZeroRange, MIN_ZERO_RUN, ZERO_BLOCK } from './zero-runs.js';

/**
 * Disk images are cut into fixed blocks aligned to the disk's offsets, not by content: a disk
 * changes in place, never by insertion, so aligned blocks find every unchanged byte again,
 * cost no cut-point search, and let changed-block tracking swap single blocks (docs/disks.md).
 * Machine backups and file backups of disk image files (`image-file.ts`) cut alike, so the
 * same disk backed up either way shares its blocks.
 */
export const IMAGE_BLOCK = 512 * 1024;

/** One piece of a block: stored data, or a hole. */
export type BlockPiece = { readonly data: Buffer } | { readonly hole: number };

/**
 * Splits one block (at most {@link IMAGE_BLOCK} bytes, starting at a block boundary) into data
 * and holes: zero runs as files have them (whole {@link ZERO_BLOCK}s, at least
 * {@link MIN_ZERO_RUN} long), counted within the block. Only the block's own bytes decide, so a
 * block read alone (changed-block tracking) is cut exactly as it is in a full read.
 */
export function cutImageBlock(block: Buffer): BlockPiece[] {
  if (isAllZero(block)) return block.length === 0 ? [] : [{ hole: block.length }];
  const pieces: BlockPiece[] = [];
  let dataStart = 0;
  let page = 0;
  while (page < block.length) {
    if (!isZeroPage(block, page)) {
      page += ZERO_BLOCK;
      continue;
    }
    let runEnd = page + ZERO_BLOCK;
    while (runEnd < block.length && isZeroPage(block, runEnd)) runEnd += ZERO_BLOCK;
    runEnd = Math.min(runEnd, block.length);
    if (runEnd - page >= MIN_ZERO_RUN) {
      if (page > dataStart) pieces.push({ data: block.subarray(dataStart, page) });
      pieces.push({ hole: runEnd - page });
      dataStart = runEnd;
    }
    page = runEnd;
  }
  if (dataStart < block.length) pieces.push({ data: block.subarray(dataStart) });
  return pieces;
}

function isZeroPage(block: Buffer, at: number): boolean {
  return isZeroRange(block, at, Math.min(ZERO_BLOCK, block.length - at));
}
