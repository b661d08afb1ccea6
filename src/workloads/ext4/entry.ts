import type { Ext4FileType, Inode } from './inode.js';
import { displayName } from './paths.js';

/** One file, directory or other entry of an ext4 file system, as a listing shows it. */
export interface Ext4Entry {
  /** The name's bytes: ext4 names are bytes, not necessarily UTF-8. Empty for the root. */
  readonly name: Buffer;
  /** The name for display: UTF-8, or with other bytes written `\xNN`. */
  readonly displayName: string;
  readonly type: Ext4FileType;
  readonly inode: number;
  /** Bytes (for a symlink, its target's length). */
  readonly size: number;
  /** Permission bits with setuid, setgid and sticky. */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Modification time in milliseconds since the epoch. */
  readonly mtime: number;
  /** Modification time in nanoseconds since the epoch, as stored. */
  readonly mtimeNs: bigint;
  /** Hard links to the inode. */
  readonly links: number;
  /** Symlinks: the target, as bytes (never followed). */
  readonly linkTarget?: Buffer;
  /** Character and block devices: their numbers. */
  readonly device?: { readonly major: number; readonly minor: number };
}

/** The listing entry of `inode` under `name`. */
export function toEntry(name: Buffer, inode: Inode, linkTarget: Buffer | undefined): Ext4Entry {
  return {
    name,
    displayName: displayName(name),
    type: inode.type,
    inode: inode.number,
    size: inode.size,
    mode: inode.mode,
    uid: inode.uid,
    gid: inode.gid,
    mtime: floorMilliseconds(inode.mtimeNs),
    mtimeNs: inode.mtimeNs,
    links: inode.links,
    ...(linkTarget && { linkTarget }),
    ...(inode.device && { device: inode.device }),
  };
}

/** Milliseconds rounded down, also before 1970 (BigInt division rounds toward zero). */
function floorMilliseconds(ns: bigint): number {
  const ms = ns / 1_000_000n;
  return Number(ns < 0n && ms * 1_000_000n !== ns ? ms - 1n : ms);
}
