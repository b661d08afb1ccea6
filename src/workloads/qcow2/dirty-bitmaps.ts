import { throwIfAborted } from '../../core/index.js';
import { readBitmapDirectory, type BitmapEntry } from './bitmap-directory.js';
import type { Qcow2Image } from './qcow2-reader.js';
import { unreadable } from './unreadable.js';

/** A persistent dirty bitmap of a qcow2 image: which guest ranges changed since it was made. */
export interface DirtyBitmap {
  readonly name: string;
  /** Bytes of guest disk per bit. */
  readonly granularity: number;
  /** Still recording writes (qemu's `auto` flag); a disabled bitmap is a frozen record. */
  readonly enabled: boolean;
  /**
   * Not stored cleanly — the image is open in a running VM, or the VM stopped without saving
   * it — so its content cannot be trusted and {@link dirtyRanges} refuses it.
   */
  readonly inUse: boolean;
}

/** A guest range a dirty bitmap marks as changed. */
export interface DirtyRange {
  readonly offset: number;
  readonly length: number;
}

/** Bits 9–55 of a bitmap table entry: the cluster holding that part of the bitmap. */
const OFFSET_MASK = 0x00fffffffffffe00n;
const ALL_ONES = 1n;
const RESERVED = ~(OFFSET_MASK | ALL_ONES) & 0xffffffffffffffffn;

/**
 * The persistent dirty bitmaps of a qcow2 v3 image (none when it has no valid bitmaps
 * extension). SOURCE_UNREADABLE when the bitmap directory is damaged; guest reads are not
 * affected by that.
 */
export async function dirtyBitmaps(disk: Qcow2Image): Promise<DirtyBitmap[]> {
  const entries = await readBitmapDirectory(disk.file, disk.header, disk.source);
  return entries.map((e) => ({
    name: e.name,
    granularity: 2 ** e.granularityBits,
    enabled: e.auto,
    inUse: e.inUse,
  }));
}

/**
 * The guest ranges bitmap `name` marks dirty, in increasing order, adjacent ones merged, each
 * a multiple of the bitmap's granularity (the last cut at the disk's end). A backup of changed
 * blocks reads exactly these. SOURCE_UNREADABLE when there is no such bitmap, when it is in use
 * or carries extra data of an unknown kind (take a full backup instead), or when it is damaged.
 */
export async function* dirtyRanges(
  disk: Qcow2Image,
  name: string,
  options: { signal?: AbortSignal } = {},
): AsyncGenerator<DirtyRange> {
  const label = disk.source;
  const entries = await readBitmapDirectory(disk.file, disk.header, label);
  const bitmap = entries.find((e) => e.name === name);
  if (bitmap === undefined)
    throw unreadable(label, `it has no dirty bitmap named ${JSON.stringify(name)}`);
  refuseUntrusted(bitmap, label);
  const { clusterSize, size } = disk.header;
  const granularity = 2 ** bitmap.granularityBits;
  const perEntry = clusterSize * 8 * granularity;
  const table = await disk.file.read(bitmap.tableOffset, bitmap.tableEntries * 8);
  const runs = new RunMerger(size);
  for (let i = 0; i < bitmap.tableEntries; i++) {
    throwIfAborted(options.signal);
    const entry = table.readBigUInt64BE(i * 8);
    const host = Number(entry & OFFSET_MASK);
    const where = `bitmap ${JSON.stringify(name)} table entry ${i}`;
    if ((entry & RESERVED) !== 0n || (host !== 0 && (entry & ALL_ONES) !== 0n))
      throw unreadable(label, `${where} has reserved bits set`);
    if (host === 0) {
      if ((entry & ALL_ONES) !== 0n) yield* runs.add(i * perEntry, perEntry);
      continue;
    }
    if (host % clusterSize !== 0 || host < clusterSize || host + clusterSize > disk.file.size)
      throw unreadable(label, `${where} points at ${host}, not a cluster of the file`);
    const bits = await disk.file.read(host, clusterSize);
    for (const [first, count] of setBitRuns(bits))
      yield* runs.add(i * perEntry + first * granularity, count * granularity);
  }
  yield* runs.finish();
}

/** Runs of set bits as [first bit, count]; bit `n` is bit `n % 8` (from the least significant) of byte `n / 8`. */
function* setBitRuns(bits: Buffer): Generator<[number, number]> {
  let start = -1;
  for (let byte = 0; byte < bits.length; byte++) {
    const value = bits[byte]!;
    // Whole bytes of zeros or ones are the common case and need no per-bit look.
    if ((value === 0 && start === -1) || (value === 0xff && start !== -1)) continue;
    for (let bit = 0; bit < 8; bit++) {
      const set = (value >> bit) & 1;
      const n = byte * 8 + bit;
      if (set === 1 && start === -1) start = n;
      else if (set === 0 && start !== -1) {
        yield [start, n - start];
        start = -1;
      }
    }
  }
  if (start !== -1) yield [start, bits.length * 8 - start];
}

function refuseUntrusted(bitmap: BitmapEntry, label: string): void {
  const what = `dirty bitmap ${JSON.stringify(bitmap.name)}`;
  if (bitmap.inUse)
    throw unreadable(
      label,
      `its ${what} is marked in use (open in a running VM, or not saved after a crash), so its content cannot be trusted; take a full backup`,
    );
  if (bitmap.unknownExtraData)
    throw unreadable(
      label,
      `its ${what} carries extra data of an unknown kind; take a full backup`,
    );
}

/** Joins adjacent ranges, cutting them at the disk's end (the last bitmap cluster runs past it). */
class RunMerger {
  private pending: { offset: number; length: number } | undefined;

  constructor(private readonly size: number) {}

  *add(offset: number, length: number): Generator<DirtyRange> {
    const end = Math.min(offset + length, this.size);
    if (end <= offset) return;
    if (this.pending !== undefined && this.pending.offset + this.pending.length === offset) {
      this.pending.length = end - this.pending.offset;
      return;
    }
    yield* this.finish();
    this.pending = { offset, length: end - offset };
  }

  *finish(): Generator<DirtyRange> {
    if (this.pending !== undefined) yield this.pending;
    this.pending = undefined;
  }
}
