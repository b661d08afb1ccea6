import type { FileExtent } from '../../engine/index.js';

/**
 * Flags under which an extent's device blocks may not hold its bytes as they read, or may be
 * rewritten in place: such extents never prove a block unchanged.
 */
const UNSAFE = new Set([
  'unknown_loc',
  'delalloc',
  'encoded',
  'unwritten',
  'data_inline',
  'not_aligned',
  'encrypted',
]);

/** One stretch of a file's logical space: on the device at `physical`, or a hole (`null`). */
interface Span {
  readonly from: number;
  readonly to: number;
  /** Device offset of `from`; null for a hole; NaN where nothing may be concluded. */
  readonly physical: number | null;
}

/** The file's logical space `[0, size)` as spans, holes included. */
function spans(extents: readonly FileExtent[], size: number): Span[] {
  const out: Span[] = [];
  let at = 0;
  for (const e of [...extents].sort((a, b) => a.offset - b.offset)) {
    if (e.offset < at) return [{ from: 0, to: size, physical: NaN }]; // overlapping: distrust
    if (e.offset > at) out.push({ from: at, to: e.offset, physical: null });
    const safe = e.physical > 0 && !e.flags.some((f) => UNSAFE.has(f));
    out.push({ from: e.offset, to: e.offset + e.length, physical: safe ? e.physical : NaN });
    at = e.offset + e.length;
  }
  if (at < size) out.push({ from: at, to: size, physical: null });
  return out;
}

/**
 * Which `block`-sized blocks of a file are provably the same bytes in two files of one copy-on-
 * write file system (btrfs, XFS with reflink): the last clone of a disk (`before`) and a new
 * clone of it (`after`). A block is the same when every byte of it is, in both files, either at
 * the same device offset — one shared block, which neither file can change without the file
 * system moving the write elsewhere — or in a hole of both. Blocks touching an extent that is
 * unwritten, not yet placed, compressed or inline prove nothing. Returns one flag per block.
 */
export function unchangedBlocks(
  before: readonly FileExtent[],
  after: readonly FileExtent[],
  size: number,
  block: number,
): boolean[] {
  const count = Math.ceil(size / block);
  const same = new Array<boolean>(count).fill(true);
  const a = spans(before, size);
  const b = spans(after, size);
  let i = 0;
  let j = 0;
  let at = 0;
  // Walk both span lists together; every stretch where they disagree marks its blocks changed.
  while (at < size && i < a.length && j < b.length) {
    const x = a[i]!;
    const y = b[j]!;
    const to = Math.min(x.to, y.to, size);
    const px = x.physical === null ? null : x.physical + (at - x.from);
    const py = y.physical === null ? null : y.physical + (at - y.from);
    const agree = px === null ? py === null : py !== null && px === py; // NaN never equals
    if (!agree)
      for (let k = Math.floor(at / block); k < Math.ceil(to / block); k++) same[k] = false;
    at = to;
    if (x.to <= at) i++;
    if (y.to <= at) j++;
  }
  if (at < size) for (let k = Math.floor(at / block); k < count; k++) same[k] = false;
  return same;
}
