import { join64, unreadable } from './damage.js';
import type { Superblock } from './superblock.js';

/** What an inode is, as `ls -l` shows it. */
export const EXT4_FILE_TYPES = [
  'file',
  'dir',
  'symlink',
  'fifo',
  'socket',
  'char',
  'block',
] as const;
/** One of {@link EXT4_FILE_TYPES}. */
export type Ext4FileType = (typeof EXT4_FILE_TYPES)[number];

const TYPE_BY_MODE: ReadonlyMap<number, Ext4FileType> = new Map([
  [0x8000, 'file'],
  [0x4000, 'dir'],
  [0xa000, 'symlink'],
  [0x1000, 'fifo'],
  [0xc000, 'socket'],
  [0x2000, 'char'],
  [0x6000, 'block'],
]);

/** The inode flags this reader acts on. */
export const INODE_FLAGS = {
  encrypted: 0x800,
  extents: 0x80000,
  inlineData: 0x10000000,
} as const;

/** The bytes of i_block: block pointers, an extent tree root, inline data or a symlink target. */
export const I_BLOCK_SIZE = 60;
const BASE_INODE_SIZE = 128;

/** One inode, checked. Sizes are bytes; times are nanoseconds since the epoch. */
export interface Inode {
  readonly number: number;
  readonly type: Ext4FileType;
  /** Permission bits with setuid, setgid and sticky (`mode & 0o7777`). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly links: number;
  readonly flags: number;
  readonly mtimeNs: bigint;
  readonly iBlock: Buffer;
  /** The in-inode extended attribute area (after the extra fields), where inline data continues. */
  readonly xattrArea: Buffer;
  /** Character and block devices: their numbers. */
  readonly device?: { readonly major: number; readonly minor: number };
}

/**
 * Parses inode `number` from its on-disk bytes. An inode not in use (no type, no links), with an
 * unknown type, extra fields past its end or a size no file can have is SOURCE_UNREADABLE: a
 * directory entry naming it is damage.
 */
export function parseInode(raw: Buffer, number: number, sb: Superblock): Inode {
  const rawMode = raw.readUInt16LE(0x0);
  const links = raw.readUInt16LE(0x1a);
  if (rawMode === 0 || links === 0)
    throw unreadable(`inode ${number} is named by a directory but is not in use`);
  const type = TYPE_BY_MODE.get(rawMode & 0xf000);
  if (type === undefined)
    throw unreadable(`inode ${number} has unknown file type 0o${(rawMode >> 12).toString(8)}`);
  const extraSize = sb.inodeSize > BASE_INODE_SIZE ? raw.readUInt16LE(0x80) : 0;
  if (BASE_INODE_SIZE + extraSize > sb.inodeSize || extraSize % 4 !== 0)
    throw unreadable(`inode ${number}'s extra size ${extraSize} does not fit the inode`);
  const size = join64(raw.readUInt32LE(0x4), raw.readUInt32LE(0x6c));
  // The largest file the format can describe: 2³² logical blocks.
  if (size > 2 ** 32 * sb.blockSize)
    throw unreadable(`inode ${number} claims an impossible size of ${size} bytes`);
  const iBlock = raw.subarray(0x28, 0x28 + I_BLOCK_SIZE);
  const device = type === 'char' || type === 'block' ? deviceNumbers(iBlock) : undefined;
  return {
    number,
    type,
    mode: rawMode & 0o7777,
    uid: raw.readUInt16LE(0x2) + raw.readUInt16LE(0x78) * 0x10000,
    gid: raw.readUInt16LE(0x18) + raw.readUInt16LE(0x7a) * 0x10000,
    size,
    links,
    flags: raw.readUInt32LE(0x20),
    mtimeNs: modificationTime(raw, extraSize, number),
    iBlock,
    xattrArea: raw.subarray(BASE_INODE_SIZE + extraSize, sb.inodeSize),
    ...(device && { device }),
  };
}

/**
 * Seconds are a signed 32-bit count; inodes with room for extra fields add two epoch bits
 * (dates past 2038) and nanoseconds.
 */
function modificationTime(raw: Buffer, extraSize: number, number: number): bigint {
  let seconds = BigInt(raw.readInt32LE(0x10));
  let nanoseconds = 0;
  if (extraSize >= 0x8c - BASE_INODE_SIZE) {
    const extra = raw.readUInt32LE(0x88);
    seconds += BigInt(extra & 3) << 32n;
    nanoseconds = extra >>> 2;
    if (nanoseconds >= 1e9)
      throw unreadable(`inode ${number}'s modification time has ${nanoseconds} nanoseconds`);
  }
  return seconds * 1_000_000_000n + BigInt(nanoseconds);
}

/** Old devices keep 8-bit numbers in the first pointer; new ones a wider encoding in the second. */
function deviceNumbers(iBlock: Buffer): { major: number; minor: number } {
  const old = iBlock.readUInt32LE(0);
  if (old !== 0) return { major: (old >> 8) & 0xff, minor: old & 0xff };
  const wide = iBlock.readUInt32LE(4);
  return { major: (wide & 0xfff00) >>> 8, minor: (wide & 0xff) | ((wide >>> 12) & 0xfff00) };
}
