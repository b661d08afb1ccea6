import type { ByteRange } from '../engine/index.js';

export type { ByteRange };

/** A stretch of a disk to read again, or to take from the previous point. */
export interface Segment extends ByteRange {
  readonly read: boolean;
}

/**
 * Splits `[0, size)` into alternating segments to read and to reuse, from the ranges known to
 * have changed, widened to whole blocks and merged. Without `changed`, one segment reads all.
 */
export function blockSegments(
  size: number,
  changed: readonly ByteRange[] | undefined,
  block: number,
): Segment[] {
  if (size === 0) return [];
  if (changed === undefined) return [{ offset: 0, length: size, read: true }];
  const wide = widenToBlocks(changed, block, size).sort((a, b) => a.from - b.from);
  const segments: Segment[] = [];
  let at = 0;
  for (const { from, to } of wide) {
    if (to <= at) continue;
    const start = Math.max(from, at);
    if (start > at) segments.push({ offset: at, length: start - at, read: false });
    const last = segments[segments.length - 1];
    if (last?.read && last.offset + last.length === start)
      segments[segments.length - 1] = { ...last, length: to - last.offset };
    else segments.push({ offset: start, length: to - start, read: true });
    at = to;
  }
  if (at < size) segments.push({ offset: at, length: size - at, read: false });
  return segments;
}

/**
 * Each non-empty range that starts before `size`, widened to whole `block`s (the last block
 * ends at `size`), as `[from, to)`.
 */
export function widenToBlocks(
  ranges: readonly ByteRange[],
  block: number,
  size: number,
): Array<{ from: number; to: number }> {
  return ranges
    .filter((r) => r.length > 0 && r.offset < size)
    .map((r) => ({
      from: Math.floor(r.offset / block) * block,
      to: Math.min(size, Math.ceil((r.offset + r.length) / block) * block),
    }));
}
