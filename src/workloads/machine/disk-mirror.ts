import { constants } from 'node:fs';
import {
  copyFile,
  open,
  readFile,
  rename,
  rm,
  stat,
  truncate,
  writeFile,
  type FileHandle,
} from 'node:fs/promises';
import type { ByteRange } from '../byte-ranges.js';
import { IMAGE_BLOCK } from '../../engine/index.js';
import { availableParallelism } from 'node:os';
import { openDisk, readRanges, type OpenDisk } from '../disk-reader.js';
import { detectImageFormat, openQcow2, type ImageFormat } from '../qcow2/index.js';
import { appendRange, createRangeHasher, fileExtents, mergeRanges } from '../../engine/index.js';
import { isAllZero } from '../../core/index.js';
import { blockRanges } from '../data-extents.js';
import { unchangedBlocks } from './shared-blocks.js';
import {
  forgetIdentity,
  identityOf,
  recordIdentity,
  unchangedSinceRefresh,
} from './source-identity.js';
import {
  blockHash,
  emptyBlockMap,
  hashBlock,
  loadBlockMap,
  saveBlockMap,
  type BlockMap,
} from './block-map.js';

/** What one mirror refresh did. */
export interface MirrorRefresh {
  /** How the source stores the disk; the mirror always holds the guest's bytes, raw. */
  readonly format: ImageFormat;
  /** The guest-visible size. */
  readonly size: number;
  /** Ranges whose bytes differ from the previous refresh; undefined: a first (full) copy. */
  readonly changed: ByteRange[] | undefined;
  readonly bytesRead: number;
  readonly bytesCopied: number;
  /**
   * The blocks of the mirror that are not all zeros, from its new block map: what a backup of
   * it must read, without asking the file system (whose answer would wait for the mirror's
   * flush). Undefined when the refresh read nothing.
   */
  readonly dataBlocks?: ByteRange[];
  /** The mirror was cloned copy-on-write (btrfs, XFS): the source was not read while frozen. */
  readonly cloned: boolean;
  /**
   * Makes the refresh durable: flushes the mirror, then records its block map and the source's
   * identity. Until it has completed, the next refresh copies everything. Kept out of the
   * freeze window (flushing a gigabyte takes most of a second) and run while the mirror is
   * backed up from the page cache.
   */
  readonly settle: () => Promise<void>;
}

/** A refresh that wrote nothing needs nothing made durable. */
const SETTLED = (): Promise<void> => Promise.resolve();

const READ = 8 * IMAGE_BLOCK;

/**
 * Makes `mirror` an exact, raw copy of the guest's view of `source` as it is now (a qcow2 image
 * is read through its structure), writing only the blocks that changed since the last refresh
 * (known from the block map beside the mirror). An image file that is provably the same,
 * unchanged file as at the last refresh is not read at all. Where the file system can clone
 * (reflink), the source is cloned at once, and the changes are found by reading the clone
 * afterwards: call this inside the freeze window and {@link finishClone} outside it.
 */
export async function cloneOrCopyMirror(
  source: string,
  mirror: string,
  options: {
    /**
     * Per block, true when the hypervisor saw no write to it since the last refresh settled
     * (its dirty bitmap): such blocks keep their hash without being read. Ignored when its
     * length does not fit the disk, or when the mirror has no map of that refresh.
     */
    readonly unchanged?: readonly boolean[];
    /**
     * Opens the guest's bytes some other way than from the file (through the hypervisor, which
     * may hold a qcow2 image's metadata in memory): the file is then never cloned or parsed.
     */
    readonly open?: () => Promise<OpenDisk>;
  } = {},
): Promise<MirrorRefresh> {
  // Seen before anything is read: a write during the refresh changes it for the next one.
  const identity = await identityOf(source);
  const format = await detectImageFormat(source);
  const disk = options.open ? await options.open() : await openGuest(source, format);
  try {
    const unread = { format, size: disk.size, bytesRead: 0, bytesCopied: 0 };
    if (identity && (await unchangedSinceRefresh(identity, mirror)))
      return { ...unread, changed: [], cloned: false, settle: SETTLED };
    await forgetIdentity(mirror);
    // The identity is recorded last, once the mirror and its map are durable.
    const recordSource = async () => {
      if (identity) await recordIdentity(mirror, identity);
    };
    try {
      if (options.open) throw new Error('read through the hypervisor, not cloned');
      await copyFile(source, `${mirror}.clone`, constants.COPYFILE_FICLONE_FORCE);
      return { ...unread, changed: undefined, cloned: true, settle: recordSource };
    } catch {
      await rm(`${mirror}.clone`, { force: true });
      const unchanged =
        options.unchanged?.length === Math.ceil(disk.size / IMAGE_BLOCK)
          ? options.unchanged
          : undefined;
      const refreshed = await copyChangedBlocks(disk, mirror, unchanged);
      return { ...refreshed, format, settle: () => refreshed.settle().then(recordSource) };
    }
  } finally {
    await disk.close();
  }
}

/**
 * After a clone, outside the freeze window: finds the blocks that changed from the block map by
 * reading the clone. A raw clone becomes the mirror; a qcow2 clone's changed guest blocks are
 * copied into the raw mirror, and the clone removed. `cloned` is what
 * {@link cloneOrCopyMirror} returned; the result's settle includes its own.
 */
export async function finishClone(mirror: string, cloned: MirrorRefresh): Promise<MirrorRefresh> {
  const clone = `${mirror}.clone`;
  const { format } = cloned;
  const disk = await openGuest(clone, format);
  let refreshed: MirrorRefresh;
  try {
    if (format === 'qcow2') {
      refreshed = { ...(await copyChangedBlocks(disk, mirror)), format, cloned: true };
    } else {
      // The clone shares its unchanged blocks with the mirror, the last clone: those need no
      // reading.
      const [before, after] = await Promise.all([fileExtents(mirror), fileExtents(clone)]);
      const unchanged =
        before && after && (await stat(mirror)).size === disk.size
          ? unchangedBlocks(before, after, disk.size, IMAGE_BLOCK)
          : undefined;
      // The clone's data extents are in the map just read: no second filefrag for them.
      const sparse = after !== undefined && (await stat(clone)).blocks * 512 < disk.size;
      const clonedDisk = {
        ...disk,
        dataExtents: async () => (sparse ? mergeRanges(after) : undefined),
      };
      const result = await hashAgainstMap(clonedDisk, mirror, undefined, false, unchanged);
      refreshed = { ...result, format, cloned: true };
    }
  } finally {
    await disk.close();
    // A qcow2 clone is only copied out of.
    if (format === 'qcow2') await rm(clone, { force: true });
  }
  // A raw clone becomes the mirror.
  if (format === 'raw') await rename(clone, mirror);
  return { ...refreshed, settle: () => refreshed.settle().then(cloned.settle) };
}

/** The blocks whose hash in `map` is not that of zeros, as merged ranges. */
function nonZeroBlocks(map: BlockMap): ByteRange[] {
  const ranges: ByteRange[] = [];
  for (let at = 0; at < map.size; at += map.blockSize) {
    const length = Math.min(map.blockSize, map.size - at);
    if (!blockHash(map, at / map.blockSize).equals(zeroHash(length)))
      appendRange(ranges, at, length);
  }
  return ranges;
}

/** Flushes the mirror's blocks, then saves the map that describes them. */
async function settleMirror(mirror: string, map: BlockMap): Promise<void> {
  const handle = await open(mirror, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
  await saveBlockMap(`${mirror}.map`, map);
}

/**
 * Copies the guest blocks of `disk` whose hashes differ from the map into `mirror`; blocks
 * flagged in `unchanged` are not read.
 */
async function copyChangedBlocks(
  disk: OpenDisk,
  mirror: string,
  unchanged?: readonly boolean[],
): Promise<Omit<MirrorRefresh, 'format'>> {
  const exists = await stat(mirror).then(
    (s) => s.size === disk.size,
    () => false,
  );
  if (!exists) {
    // A fresh, sparse mirror: blocks of zeros are never written into it.
    await rm(`${mirror}.map`, { force: true });
    await (await open(mirror, 'w')).close();
    await truncate(mirror, disk.size);
  }
  const handle = await open(mirror, 'r+');
  try {
    return { ...(await hashAgainstMap(disk, mirror, handle, !exists, unchanged)), cloned: false };
  } finally {
    await handle.close();
  }
}

/**
 * Reads `disk` block by block, compares each block's hash with the map of `mirror`, writes
 * changed blocks through `target` when given; the refresh's settle saves the new map. Blocks the file system reports as holes are zeros without being read (docs/disks.md
 * "Holes"); blocks flagged in `unchanged` keep their hash from the map without being read.
 */
async function hashAgainstMap(
  disk: OpenDisk,
  mirror: string,
  target: FileHandle | undefined,
  fresh = false,
  unchanged?: readonly boolean[],
): Promise<Omit<MirrorRefresh, 'cloned' | 'format'>> {
  const mapPath = `${mirror}.map`;
  const size = disk.size;
  const previous = fresh ? undefined : await loadBlockMap(mapPath, size, IMAGE_BLOCK);
  // Gone until this refresh completes: after an interruption the mirror may hold blocks the
  // old map does not describe, so the next refresh must copy everything.
  await rm(mapPath, { force: true });
  // The changes found now are relative to the point made from the last refresh; which point
  // that is gets recorded again only once this refresh's point exists.
  await rm(basePath(mirror), { force: true });
  const map: BlockMap = emptyBlockMap(size, IMAGE_BLOCK);
  const changed: ByteRange[] = [];
  let bytesCopied = 0;
  let bytesRead = 0;
  // Records one block's hash; a changed block is noted and copied into the mirror.
  const onBlock = async (offset: number, hash: Uint8Array, block: Buffer | number) => {
    const index = offset / IMAGE_BLOCK;
    const length = typeof block === 'number' ? block : block.length;
    map.hashes.set(hash, index * 32);
    if (previous && blockHash(previous, index).equals(hash)) return;
    appendRange(changed, offset, length);
    // A fresh mirror is sparse: zeros are never written into it.
    if (target && !(fresh && zeroHash(length).equals(hash))) {
      const data = typeof block === 'number' ? zeroBuffer(length) : block;
      await target.write(data, 0, length, offset);
      bytesCopied += length;
    }
  };
  // Each block is proven unchanged (shared with the last clone), a hole, or read and hashed.
  const data: ByteRange[] = [];
  for (const range of blockRanges(size, await disk.dataExtents?.(), IMAGE_BLOCK)) {
    for (let at = range.offset; at < range.offset + range.length; at += IMAGE_BLOCK) {
      const index = at / IMAGE_BLOCK;
      const length = Math.min(IMAGE_BLOCK, size - at);
      if (previous && unchanged?.[index] === true)
        map.hashes.set(blockHash(previous, index), index * 32);
      else if (!range.data) await onBlock(at, zeroHash(length), length);
      else appendRange(data, at, length);
    }
  }
  const hasher = createRangeHasher({ bytes: data.reduce((n, r) => n + r.length, 0) });
  try {
    const reading = {
      readSize: READ,
      depth: READS_PER_THREAD * Math.max(1, availableParallelism()),
      // Zero blocks are known by comparison, far cheaper than hashing; the rest go to threads.
      prepare: async (read: Buffer) => {
        const blocks = [];
        for (let b = 0; b < read.length; b += IMAGE_BLOCK) {
          const length = Math.min(IMAGE_BLOCK, read.length - b);
          if (!isAllZero(read.subarray(b, b + length))) blocks.push({ offset: b, length });
        }
        return { blocks, ...(await hasher.hash(read, blocks)) };
      },
    };
    await readRanges(disk, data, reading, async (at, _length, { data: read, blocks, hashes }) => {
      bytesRead += read.length;
      let hashed = 0;
      for (let b = 0; b < read.length; b += IMAGE_BLOCK) {
        const block = read.subarray(b, b + IMAGE_BLOCK);
        const hash =
          blocks[hashed]?.offset === b
            ? hashes.subarray(hashed * 32, ++hashed * 32)
            : zeroHash(block.length);
        await onBlock(at + b, hash, block);
      }
    });
  } finally {
    await hasher.close();
  }
  return {
    size,
    changed: previous ? mergeRanges(changed) : undefined,
    dataBlocks: nonZeroBlocks(map),
    bytesRead,
    bytesCopied,
    settle: () => settleMirror(mirror, map),
  };
}

/** Opens a disk as its guest sees it: a qcow2 image through its structure, else raw bytes. */
function openGuest(path: string, format: ImageFormat): Promise<OpenDisk> {
  return format === 'qcow2' ? openQcow2(path) : openDisk(path);
}

/** Where the id of the point made from a mirror's current state is kept. */
function basePath(mirror: string): string {
  return `${mirror}.point`;
}

/**
 * The point the mirror's last refresh was backed up into, if that backup completed: the only
 * parent its changed blocks may be applied to.
 */
export async function mirrorBase(mirror: string): Promise<string | undefined> {
  return readFile(basePath(mirror), 'utf8').then(
    (text) => text.trim() || undefined,
    () => undefined,
  );
}

/** Records that the mirror's current state is backed up as point `id`. */
export async function setMirrorBase(mirror: string, id: string): Promise<void> {
  await writeFile(`${basePath(mirror)}.tmp`, id);
  await rename(`${basePath(mirror)}.tmp`, basePath(mirror));
}

let zeros: Buffer | undefined;
const zeroHashes = new Map<number, Buffer>();

/** The hash of `length` zero bytes, computed once per length. */
function zeroHash(length: number): Buffer {
  let hash = zeroHashes.get(length);
  if (hash === undefined) zeroHashes.set(length, (hash = hashBlock(Buffer.alloc(length))));
  return hash;
}

/** A shared buffer of at least `length` zero bytes (never written to). */
function zeroBuffer(length: number): Buffer {
  if (zeros === undefined || zeros.length < length) zeros = Buffer.alloc(length);
  return zeros.subarray(0, length);
}

/** Reads in flight per hashing thread: a sparse disk's extents are often short. */
const READS_PER_THREAD = 2;
