import {
  chmodSync,
  constants,
  fchmodSync,
  fchownSync,
  futimesSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  chownSync,
} from 'node:fs';
import { HoldfastError } from '../../core/index.js';
import type { Inode } from './inode.js';

/** Create a new file only: never follow a symlink, never open what is already there. */
const CREATE_FLAGS =
  constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
const IS_ROOT = process.getuid?.() === 0;
const SLASH = Buffer.from('/');
const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');

/** What is already at a path in the target, if anything, without following a symlink. */
export type Existing = 'none' | 'directory' | 'other';

/** Why a name from the image cannot be a file name in the target, or undefined when it can. */
export function unsafeName(name: Buffer): string | undefined {
  if (name.length === 0) return 'its name is empty';
  if (name.equals(DOT) || name.equals(DOTDOT)) return `its name is '${name.toString()}'`;
  if (name.includes(0x2f)) return "its name contains '/'";
  if (name.includes(0)) return 'its name contains a NUL byte';
  return undefined;
}

/** `parent/name` as bytes (names are bytes, not text). */
export function childPath(parent: Buffer, name: Buffer): Buffer {
  return Buffer.concat([parent, SLASH, name]);
}

/** What is at `path`, by lstat. */
export function existing(path: Buffer): Existing {
  const stat = lstatSync(path, { throwIfNoEntry: false });
  if (stat === undefined) return 'none';
  return stat.isDirectory() ? 'directory' : 'other';
}

/**
 * Makes the extraction target a real directory (created if missing, parents too). An existing
 * non-directory, or a symlink even to a directory, is RESTORE_TARGET_INVALID: the caller names
 * the target, and a link there would send every write elsewhere.
 */
export function prepareTarget(target: string): Buffer {
  const path = Buffer.from(target.replace(/\/+$/, '') || '/');
  try {
    const found = existing(path);
    if (found === 'other')
      throw new HoldfastError(
        'RESTORE_TARGET_INVALID',
        `The extraction target ${target} exists and is not a directory (or is a symlink).`,
      );
    if (found === 'none') mkdirSync(path, { recursive: true, mode: 0o700 });
    return path;
  } catch (error) {
    if (error instanceof HoldfastError) throw error;
    throw new HoldfastError(
      'RESTORE_TARGET_INVALID',
      `Cannot create the extraction target ${target}: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/** Creates a directory owner-writable (its own mode comes last, after its children). */
export function makeDirectory(path: Buffer): void {
  mkdirSync(path, { mode: 0o700 });
}

/** Opens a new file for writing, failing with EEXIST if anything is at `path`. */
export function createFile(path: Buffer): number {
  return openSync(path, CREATE_FLAGS, 0o600);
}

/** Creates a symlink holding `target` as given (never resolved). */
export function makeSymlink(target: Buffer, path: Buffer): void {
  symlinkSync(target, path);
}

/** Links `path` to the file already extracted at `first`. */
export function makeHardLink(first: Buffer, path: Buffer): void {
  linkSync(first, path);
}

/** Removes a non-directory in the way (unlink does not follow a symlink). */
export function removeEntry(path: Buffer): void {
  unlinkSync(path);
}

/** Owner (as root), mode and modification time of an open file. */
export function finishFile(fd: number, inode: Inode): void {
  if (IS_ROOT) fchownSync(fd, inode.uid, inode.gid);
  // After chown, which clears setuid and setgid.
  fchmodSync(fd, inode.mode);
  const seconds = mtimeSeconds(inode);
  futimesSync(fd, seconds, seconds);
}

/** Owner (as root), mode and modification time of a directory made by the extraction. */
export function finishDirectory(path: Buffer, inode: Inode): void {
  if (IS_ROOT) chownSync(path, inode.uid, inode.gid);
  chmodSync(path, inode.mode);
  const seconds = mtimeSeconds(inode);
  utimesSync(path, seconds, seconds);
}

/** Owner (as root) and modification time of a symlink itself. */
export function finishSymlink(path: Buffer, inode: Inode): void {
  if (IS_ROOT) lchownSync(path, inode.uid, inode.gid);
  const seconds = mtimeSeconds(inode);
  lutimesSync(path, seconds, seconds);
}

function mtimeSeconds(inode: Inode): number | Date {
  const seconds = Number(inode.mtimeNs) / 1e9;
  // Node takes a negative number of seconds for "now"; a Date carries times before 1970.
  return seconds >= 0 ? seconds : new Date(seconds * 1000);
}
