import { isAllZero } from '../core/index.js';
import type { ContentPiece } from './tree.js';

/**
 * Disk images are cut into fixed blocks aligned to the disk's offsets, not by content: a disk
 * changes in place, never by insertion, so aligned blocks find every unchanged byte again,
 * cost no cut-point search, and let changed-block tracking swap single blocks (docs/disks.md).
 * Machine backups and file backups of disk image files (`image-file.ts`) cut alike, so the
 * same disk backed up either way shares its blocks.
 */
export const IMAGE_BLOCK = 512 * 1024;
/** Zero stretches are found in pages of this size... */
export const ZERO_PAGE = 4096;
/** ...and recorded as holes from this length on; shorter ones stay inside the chunk. */
export const MIN_IMAGE_HOLE = 64 * 1024;

/** One piece of a block: stored data, or a hole. */
export type BlockPiece = { readonly data: Buffer } | { readonly hole: number };

/**
 * Splits one block (at most {@link IMAGE_BLOCK} bytes, starting at a block boundary) into data
 * and holes. Only the block's own bytes decide, so a block read alone (changed-block tracking)
 * is cut exactly as it is in a full read.
 */
export function cutImageBlock(block: Buffer): BlockPiece[] {
  if (isAllZero(block)) return block.length === 0 ? [] : [{ hole: block.length }];
  const pieces: BlockPiece[] = [];
  let dataStart = 0;
  let page = 0;
  while (page < block.length) {
    if (!isZeroPage(block, page)) {
      page += ZERO_PAGE;
      continue;
    }
    let runEnd = page + ZERO_PAGE;
    while (runEnd < block.length && isZeroPage(block, runEnd)) runEnd += ZERO_PAGE;
    runEnd = Math.min(runEnd, block.length);
    if (runEnd - page >= MIN_IMAGE_HOLE) {
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
  const end = Math.min(at + ZERO_PAGE, block.length);
  if (block[at] !== 0 || block[end - 1] !== 0) return false;
  return isAllZero(block.subarray(at, end));
}

/** Appends a piece to content, merging a hole into a hole just before it. */
export function appendPiece(content: ContentPiece[], piece: ContentPiece): void {
  const last = content[content.length - 1];
  if (typeof piece === 'number' && typeof last === 'number')
    content[content.length - 1] = last + piece;
  else if (piece !== 0) content.push(piece);
}
