import { execFile } from 'node:child_process';
import { constants, type BigIntStats } from 'node:fs';
import {
  chmod,
  lchown,
  lstat,
  lutimes,
  mkdir,
  rm,
  symlink,
  type FileHandle,
  utimes,
} from 'node:fs/promises';
import { promisify } from 'node:util';
import { HoldfastError } from '../core/index.js';
import type { Timestamp, TreeNode } from './tree.js';

const run = promisify(execFile);

/** What to do when the target already has something at a path. */
export const OVERWRITE_MODES = ['never', 'if-changed', 'always'] as const;
/** One of {@link OVERWRITE_MODES}. */
export type OverwriteMode = (typeof OVERWRITE_MODES)[number];

/** Flags for creating a restored file: never follow a symlink, never reuse what is there. */
export const CREATE_FLAGS =
  constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** `lstat` that returns undefined for a missing path. */
export async function lstatIfExists(path: Buffer): Promise<BigIntStats | undefined> {
  try {
    return await lstat(path, { bigint: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
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
export async function clearPath(path: Buffer, existing: BigIntStats): Promise<void> {
  await rm(path, { recursive: existing.isDirectory(), force: true });
}

const IS_ROOT = typeof process.getuid === 'function' && process.getuid() === 0;

/** Applies ownership (as root), mode and times through an open handle. */
export async function applyFileMetadata(handle: FileHandle, node: TreeNode): Promise<void> {
  if (IS_ROOT) await handle.chown(node.uid, node.gid);
  // chmod after chown: chown clears setuid/setgid bits.
  await handle.chmod(node.mode);
  await handle.utimes(toSeconds(node.mtime), toSeconds(node.mtime));
}

/** Applies ownership, mode and times by path; symlinks get ownership and times only. */
export async function applyPathMetadata(path: Buffer, node: TreeNode): Promise<void> {
  if (IS_ROOT) await lchown(path, node.uid, node.gid);
  if (node.type === 'symlink') {
    await lutimes(path, toSeconds(node.mtime), toSeconds(node.mtime));
    return;
  }
  await chmod(path, node.mode);
  await utimes(path, toSeconds(node.mtime), toSeconds(node.mtime));
}

/** Creates a directory, or accepts an existing real directory (never a symlink to one). */
export async function ensureDirectory(
  path: Buffer,
  overwrite: OverwriteMode,
): Promise<'created' | 'existing' | 'blocked'> {
  const existing = await lstatIfExists(path);
  if (existing?.isDirectory()) return 'existing';
  if (existing) {
    if (overwrite === 'never') return 'blocked';
    await clearPath(path, existing);
  }
  await mkdir(path, { mode: 0o700 });
  return 'created';
}

/** Creates a symlink, a FIFO or a device node for `node` at `path` (which must be free). */
export async function createSpecial(path: Buffer, node: TreeNode): Promise<void> {
  switch (node.type) {
    case 'symlink':
      await symlink(node.target ?? Buffer.alloc(0), path);
      return;
    case 'fifo':
      // Node has no mkfifo(2); the coreutils command takes the path as one argument, unparsed.
      await run('mkfifo', ['-m', (node.mode & 0o777).toString(8), '--', path.toString()]);
      return;
    case 'chardev':
    case 'blockdev': {
      const rdev = node.rdev ?? 0;
      const major = Number((BigInt(rdev) >> 8n) & 0xfffn) | Number((BigInt(rdev) >> 32n) & ~0xfffn);
      const minor = (rdev & 0xff) | Number((BigInt(rdev) >> 12n) & ~0xffn);
      await run('mknod', [
        '--',
        path.toString(),
        node.type === 'chardev' ? 'c' : 'b',
        String(major),
        String(minor),
      ]);
      return;
    }
    default:
      throw new HoldfastError(
        'RESTORE_WRITE_FAILED',
        `Cannot restore a ${node.type}; it is recorded in the point but skipped.`,
      );
  }
}
