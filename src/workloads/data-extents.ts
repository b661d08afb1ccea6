import { mergeRanges } from '../engine/index.js';
import { widenToBlocks, type ByteRange } from './byte-ranges.js';

/** A stretch of a disk in whole blocks: to read (`data`), or known to be all zeros. */
export interface BlockRange extends ByteRange {
  readonly data: boolean;
}

/**
 * Splits `[0, size)` into stretches of whole `block`s (the last one ends at `size`): those
 * holding any byte of `extents`, to read, and those between, all zeros. Without extents, one
 * stretch to read covers everything.
 */
export function blockRanges(
  size: number,
  extents: readonly ByteRange[] | undefined,
  block: number,
): BlockRange[] {
  if (size === 0) return [];
  if (extents === undefined) return [{ offset: 0, length: size, data: true }];
  const wide = mergeRanges(
    widenToBlocks(extents, block, size).map(({ from, to }) => ({
      offset: from,
      length: to - from,
    })),
  );
  const out: BlockRange[] = [];
  let at = 0;
  for (const r of wide) {
    if (r.offset > at) out.push({ offset: at, length: r.offset - at, data: false });
    out.push({ ...r, data: true });
    at = r.offset + r.length;
  }
  if (at < size) out.push({ offset: at, length: size - at, data: false });
  return out;
}

/**
 * The parts of `ranges` inside `window`, relative to its start (undefined stays undefined:
 * nothing is known).
 */
export function clipRanges(
  ranges: readonly ByteRange[] | undefined,
  window: ByteRange,
): ByteRange[] | undefined {
  if (ranges === undefined) return undefined;
  const end = window.offset + window.length;
  const out: ByteRange[] = [];
  for (const r of ranges) {
    const from = Math.max(r.offset, window.offset);
    const to = Math.min(r.offset + r.length, end);
    if (to > from) out.push({ offset: from - window.offset, length: to - from });
  }
  return out;
}
