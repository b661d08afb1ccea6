/**
 * Snapshots and comparisons of directory trees for the end-to-end tests. Paths are handled as
 * raw bytes throughout (names need not be UTF-8), and kept as `latin1` strings, which map each
 * byte to one character and back without loss.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync, type BigIntStats } from 'node:fs';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Kinds of entry a snapshot distinguishes. */
export type EntryType = 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'chardev' | 'blockdev';

/** What a snapshot records of one entry. */
export interface EntrySnapshot {
  readonly type: EntryType;
  /** Permission bits with setuid, setgid and sticky; 0 for symlinks (they have none). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Files only; 0 otherwise. */
  readonly size: number;
  /** Modification time, whole seconds (rounded down). */
  readonly mtime: number;
  /** SHA-256 of a file's content; undefined for files over the hash limit and other types. */
  readonly hash?: string;
  /** Symlinks: the target bytes as hex. */
  readonly target?: string;
  readonly ino: bigint;
  readonly nlink: number;
}

/** A tree: relative path (raw bytes as latin1, `/`-separated, '' for the root) → entry. */
export type TreeSnapshot = Map<string, EntrySnapshot>;

/** Options of {@link snapshotTree}. */
export interface SnapshotOptions {
  /** Files larger than this are not hashed (compare them with {@link sameFileContent}). */
  readonly hashLimit?: number;
}

/** Records every entry below `root` (and `root` itself as ''). Synchronous: fast for many small files. */
export function snapshotTree(root: string | Buffer, options: SnapshotOptions = {}): TreeSnapshot {
  const limit = options.hashLimit ?? 64 * 1024 * 1024;
  const out: TreeSnapshot = new Map();
  const rootBuf = typeof root === 'string' ? Buffer.from(root) : root;
  const visit = (path: Buffer, rel: string): void => {
    const stats = lstatSync(path, { bigint: true });
    const entry = describeEntry(path, stats, limit);
    out.set(rel, entry);
    if (entry.type !== 'dir') return;
    for (const name of readdirSync(path, { encoding: 'buffer' })) {
      const child = Buffer.concat([path, SLASH, name]);
      visit(child, rel === '' ? name.toString('latin1') : `${rel}/${name.toString('latin1')}`);
    }
  };
  visit(rootBuf, '');
  return out;
}

const SLASH = Buffer.from('/');

function describeEntry(path: Buffer, s: BigIntStats, hashLimit: number): EntrySnapshot {
  const type = entryType(s);
  const base = {
    type,
    mode: type === 'symlink' ? 0 : Number(s.mode & 0o7777n),
    uid: Number(s.uid),
    gid: Number(s.gid),
    size: type === 'file' ? Number(s.size) : 0,
    mtime: floorSeconds(s.mtimeNs),
    ino: s.ino,
    nlink: Number(s.nlink),
  };
  if (type === 'file' && s.size <= BigInt(hashLimit)) {
    return { ...base, hash: createHash('sha256').update(readFileSync(path)).digest('hex') };
  }
  if (type === 'symlink') {
    return { ...base, target: readlinkSync(path, { encoding: 'buffer' }).toString('hex') };
  }
  return base;
}

function floorSeconds(ns: bigint): number {
  const sec = ns / 1_000_000_000n;
  return Number(ns < 0n && ns % 1_000_000_000n !== 0n ? sec - 1n : sec);
}

function entryType(s: BigIntStats): EntryType {
  if (s.isFile()) return 'file';
  if (s.isDirectory()) return 'dir';
  if (s.isSymbolicLink()) return 'symlink';
  if (s.isFIFO()) return 'fifo';
  if (s.isSocket()) return 'socket';
  if (s.isCharacterDevice()) return 'chardev';
  return 'blockdev';
}

/** A readable form of a latin1-encoded raw path: printable ASCII as is, other bytes as \xNN. */
export function showPath(rel: string): string {
  let out = '';
  for (const byte of Buffer.from(rel, 'latin1')) {
    out +=
      byte >= 0x20 && byte < 0x7f && byte !== 0x5c
        ? String.fromCharCode(byte)
        : `\\x${byte.toString(16).padStart(2, '0')}`;
  }
  return `'${out || '.'}'`;
}

/** Options of {@link diffTrees}. */
export interface DiffOptions {
  /** Compare ownership (default true). */
  readonly owners?: boolean;
  /** Compare modification times (default true). */
  readonly mtimes?: boolean;
  /** Compare directory modification times (default: as `mtimes`). */
  readonly dirMtimes?: boolean;
  /** Leave paths out of the comparison. */
  readonly ignore?: (rel: string) => boolean;
}

/**
 * Differences between an expected and an actual tree: missing and extra entries, and for each
 * common entry type, mode, owner, size, mtime (seconds), content hash and link target. Hard
 * links must match too: entries sharing an inode in `expected` share one in `actual`, and
 * entries that do not, do not. An empty list means the trees are the same.
 */
export function diffTrees(
  expected: TreeSnapshot,
  actual: TreeSnapshot,
  options: DiffOptions = {},
): string[] {
  const problems: string[] = [];
  const keep = (rel: string): boolean => !options.ignore?.(rel);
  for (const [rel, want] of expected) {
    if (!keep(rel)) continue;
    const got = actual.get(rel);
    if (!got) {
      problems.push(`missing: ${showPath(rel)} (${want.type})`);
      continue;
    }
    const field = (name: string, a: unknown, b: unknown): void => {
      if (a !== b)
        problems.push(`${showPath(rel)}: ${name} is ${String(b)}, expected ${String(a)}`);
    };
    field('type', want.type, got.type);
    if (want.type !== got.type) continue;
    field('mode', want.mode.toString(8), got.mode.toString(8));
    if (options.owners !== false) {
      field('uid', want.uid, got.uid);
      field('gid', want.gid, got.gid);
    }
    field('size', want.size, got.size);
    const mtimes = want.type === 'dir' ? (options.dirMtimes ?? options.mtimes) : options.mtimes;
    if (mtimes !== false) field('mtime', want.mtime, got.mtime);
    field('content hash', want.hash, got.hash);
    field('link target', want.target, got.target);
  }
  for (const rel of actual.keys()) {
    if (keep(rel) && !expected.has(rel)) problems.push(`unexpected: ${showPath(rel)}`);
  }
  problems.push(...hardLinkProblems(expected, actual, keep));
  return problems;
}

function hardLinkProblems(
  expected: TreeSnapshot,
  actual: TreeSnapshot,
  keep: (rel: string) => boolean,
): string[] {
  const problems: string[] = [];
  const groups = new Map<bigint, string[]>();
  for (const [rel, e] of expected) {
    if (e.type !== 'file' || !keep(rel) || !actual.has(rel)) continue;
    groups.set(e.ino, [...(groups.get(e.ino) ?? []), rel]);
  }
  const owner = new Map<bigint, bigint>();
  for (const [ino, paths] of groups) {
    const got = new Set(paths.map((p) => actual.get(p)!.ino));
    if (got.size > 1)
      problems.push(`hard links split: ${paths.map(showPath).join(', ')} are not one file`);
    for (const actualIno of got) {
      const other = owner.get(actualIno);
      if (other !== undefined && other !== ino) {
        problems.push(
          `hard links joined: ${paths.map(showPath).join(', ')} share an inode with ${groups.get(other)!.map(showPath).join(', ')}`,
        );
      }
      owner.set(actualIno, ino);
    }
  }
  return problems;
}

/** Number of 512-byte blocks a file has allocated. */
export function allocatedBytes(path: string): number {
  return Number(lstatSync(path, { bigint: true }).blocks) * 512;
}

/** True when `cmp` finds the two files byte for byte identical. */
export async function sameFileContent(a: string, b: string): Promise<boolean> {
  try {
    await execFileAsync('cmp', ['-s', '--', a, b]);
    return true;
  } catch (error) {
    if ((error as { code?: unknown }).code === 1) return false;
    throw error;
  }
}

/** Paths (latin1 relative) of the regular files in a snapshot. */
export function filePaths(tree: TreeSnapshot): string[] {
  return [...tree].filter(([, e]) => e.type === 'file').map(([rel]) => rel);
}
