import { isUtf8 } from 'node:buffer';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  constants,
  fchmodSync,
  fchownSync,
  futimesSync,
  lchownSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  utimesSync,
  type BigIntStats,
} from 'node:fs';
import { HoldfastError } from '../core/index.js';
import type { Timestamp, TreeNode } from './tree.js';
import { writeXattrs } from './xattrs.js';

// The restore's file-system calls are synchronous on purpose: for many small files a thread-pool
// round trip per call costs several times the call itself, and the page cache absorbs writes.

/** What to do when the target already has something at a path. */
export const OVERWRITE_MODES = ['never', 'if-changed', 'always'] as const;
/** One of {@link OVERWRITE_MODES}. */
export type OverwriteMode = (typeof OVERWRITE_MODES)[number];

/** Flags for creating a restored file: never follow a symlink, never reuse what is there. */
export const CREATE_FLAGS =
  constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** `lstat` that returns undefined for a missing path. */
export function lstatIfExists(path: Buffer): BigIntStats | undefined {
  return lstatSync(path, { bigint: true, throwIfNoEntry: false });
}

/** Seconds as a float for utimes; sub-microsecond precision is not representable anyway. */
export function toSeconds(t: Timestamp): number {
  return t[0] + t[1] / 1e9;
}

/** True when an existing file already holds this node's content per size and mtime. */
export function looksRestored(existing: BigIntStats, node: TreeNode): boolean {
  if (!existing.isFile() || Number(existing.size) !== node.size) return false;
  const ns = BigInt(node.mtime[0]) * 1_000_000_000n + BigInt(node.mtime[1]);
  // utimes goes through a double: allow the microsecond it can lose.
  const diff = existing.mtimeNs - ns;
  return diff > -1000n && diff < 1000n;
}

/** Removes whatever is at `path` so a fresh entry can be created there. */
export function clearPath(path: Buffer, existing: BigIntStats): void {
  rmSync(path, { recursive: existing.isDirectory(), force: true });
}

const IS_ROOT = typeof process.getuid === 'function' && process.getuid() === 0;
// A file this process creates already belongs to it; chown only when the point says otherwise.
const OWN_UID = typeof process.geteuid === 'function' ? process.geteuid() : -1;
const OWN_GID = typeof process.getegid === 'function' ? process.getegid() : -1;

function needsChown(node: TreeNode): boolean {
  return IS_ROOT && (node.uid !== OWN_UID || node.gid !== OWN_GID);
}

/**
 * The process's umask, read from /proc: `process.umask()` can only read it by setting it twice,
 * which races with threads creating files. Undefined when it cannot be read.
 */
const UMASK = ((): number | undefined => {
  try {
    const found = /^Umask:\s*([0-7]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return found?.[1] === undefined ? undefined : parseInt(found[1], 8);
  } catch {
    return undefined;
  }
})();

/**
 * Whether a file created with `node`'s own mode ends up with exactly that mode, so that no
 * chmod is needed after it: the umask takes none of its bits, it has no setuid, setgid or
 * sticky bit, no chown follows (it would clear those) and no extended attributes are to be
 * written by path (which needs the write permission the final mode may not give).
 */
function keepsModeFromCreate(node: TreeNode): boolean {
  return (
    UMASK !== undefined &&
    (node.mode & (0o7000 | UMASK)) === 0 &&
    !needsChown(node) &&
    node.xattrs === undefined
  );
}

/**
 * The mode to create a restored file with: its own when that is what the file will keep (one
 * system call fewer per file), otherwise owner-only until {@link applyFileMetadata} sets it.
 * Creating with the final mode exposes nothing more: the file's content is the point's.
 */
export function createMode(node: TreeNode): number {
  return keepsModeFromCreate(node) ? node.mode & 0o777 : 0o600;
}

/**
 * Applies ownership (as root), mode and times through an open file descriptor of a file
 * created with {@link createMode}.
 */
export function applyFileMetadata(fd: number, path: Buffer, node: TreeNode): void {
  if (node.xattrs) writeXattrs(path, node.xattrs);
  if (needsChown(node)) fchownSync(fd, node.uid, node.gid);
  // chmod after chown: chown clears setuid/setgid bits.
  if (!keepsModeFromCreate(node)) fchmodSync(fd, node.mode);
  futimesSync(fd, toSeconds(node.mtime), toSeconds(node.mtime));
}

/** Applies ownership, mode and times by path; symlinks get ownership and times only. */
export function applyPathMetadata(path: Buffer, node: TreeNode): void {
  if (needsChown(node)) lchownSync(path, node.uid, node.gid);
  if (node.type === 'symlink') {
    lutimesSync(path, toSeconds(node.mtime), toSeconds(node.mtime));
    return;
  }
  if (node.xattrs) writeXattrs(path, node.xattrs);
  chmodSync(path, node.mode);
  utimesSync(path, toSeconds(node.mtime), toSeconds(node.mtime));
}

/** Creates a directory, or accepts an existing real directory (never a symlink to one). */
export function ensureDirectory(
  path: Buffer,
  overwrite: OverwriteMode,
): 'created' | 'existing' | 'blocked' {
  const existing = lstatIfExists(path);
  if (existing?.isDirectory()) return 'existing';
  if (existing) {
    if (overwrite === 'never') return 'blocked';
    clearPath(path, existing);
  }
  return createDirectory(path);
}

/** Creates a directory where nothing is expected; fails (EEXIST) rather than reuse anything. */
export function createDirectory(path: Buffer): 'created' {
  mkdirSync(path, { mode: 0o700 });
  return 'created';
}

/** Creates a symlink, a FIFO or a device node for `node` at `path` (which must be free). */
export function createSpecial(path: Buffer, node: TreeNode): void {
  switch (node.type) {
    case 'symlink':
      symlinkSync(node.target ?? Buffer.alloc(0), path);
      return;
    case 'fifo':
      // Node has no mkfifo(2); the coreutils command takes the path as one argument, unparsed.
      viaTextPath(path, (p) =>
        execFileSync('mkfifo', ['-m', (node.mode & 0o777).toString(8), '--', p]),
      );
      return;
    case 'chardev':
    case 'blockdev': {
      const rdev = node.rdev ?? 0;
      const major = Number((BigInt(rdev) >> 8n) & 0xfffn) | Number((BigInt(rdev) >> 32n) & ~0xfffn);
      const minor = (rdev & 0xff) | Number((BigInt(rdev) >> 12n) & ~0xffn);
      const kind = node.type === 'chardev' ? 'c' : 'b';
      viaTextPath(path, (p) =>
        execFileSync('mknod', ['--', p, kind, String(major), String(minor)]),
      );
      return;
    }
    default:
      throw new HoldfastError(
        'RESTORE_WRITE_FAILED',
        `Cannot restore a ${node.type}; it is recorded in the point but skipped.`,
      );
  }
}

/**
 * Runs `create` with a path a command line can carry. Arguments of child processes are text,
 * so an entry whose path is not valid UTF-8 is created under a temporary ASCII name in the
 * nearest enclosing directory whose path is (at worst the restore target itself) and then
 * renamed to its exact bytes; rename(2) takes bytes.
 */
function viaTextPath(path: Buffer, create: (textPath: string) => void): void {
  if (isUtf8(path)) {
    create(path.toString());
    return;
  }
  let cut = path.lastIndexOf(0x2f);
  while (cut > 0 && !isUtf8(path.subarray(0, cut))) cut = path.lastIndexOf(0x2f, cut - 1);
  if (cut <= 0) {
    throw new HoldfastError('RESTORE_WRITE_FAILED', 'No directory with a UTF-8 path to work in.');
  }
  const temporary = `${path.subarray(0, cut).toString()}/.holdfast-${process.pid}-${randomBytes(6).toString('hex')}`;
  create(temporary);
  try {
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
}
