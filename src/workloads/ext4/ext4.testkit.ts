import { execFileSync } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import {
  chownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
  writeSync,
  closeSync,
  ftruncateSync,
  chmodSync,
} from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { ensureCommand } from '../../core/os-tools.testkit.js';
import type { DiskReader } from '../partition-table.js';
import type { Ext4Volume } from './ext4-volume.js';

/** The name that is not UTF-8: `f`, 0xFF, `o`. */
export const NON_UTF8_NAME = Buffer.from([0x66, 0xff, 0x6f]);
export const LARGE_SIZE = 5 * 1024 * 1024;
export const SPARSE_SIZE = 3 * 1024 * 1024 + 123;
/** Where the sparse file's written pieces are: the rest are holes. */
export const SPARSE_PIECES = [
  { at: 0, text: 'start of the sparse file' },
  { at: 1024 * 1024 + 100, text: 'hello from the middle' },
  // Data at the very end: mke2fs -d with inline_data records a sparse file's size wrongly when
  // it ends in a hole.
  { at: SPARSE_SIZE - 4, text: 'end.' },
];

/** `size` pseudo-random bytes from `seed`: AES-CTR over zeros, the same every run. */
export function seededBytes(size: number, seed: number): Buffer {
  const iv = Buffer.alloc(16);
  iv.writeUInt32LE(seed);
  const cipher = createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), iv);
  return cipher.update(Buffer.alloc(size));
}

/**
 * Fills `dir` with what the reader must handle: nested directories, a 5 MiB random file, a
 * sparse file, short and long symlinks, a name that is not UTF-8, an empty file, a hard link,
 * a FIFO, odd modes, owners and times, and (unless `bigDir` is 0) a directory of many entries.
 */
export function populateSource(dir: string, bigDir = 3000): void {
  mkdirSync(join(dir, 'a/b/c'), { recursive: true });
  writeFileSync(join(dir, 'a/b/c/deep.txt'), 'deep inside\n');
  writeFileSync(join(dir, 'a/large.bin'), seededBytes(LARGE_SIZE, 1));
  const sparse = openSync(join(dir, 'sparse'), 'w');
  ftruncateSync(sparse, SPARSE_SIZE);
  for (const piece of SPARSE_PIECES) writeSync(sparse, piece.text, piece.at);
  closeSync(sparse);
  symlinkSync('a/large.bin', join(dir, 'link'));
  symlinkSync(`${'long/'.repeat(30)}target`, join(dir, 'long-link'));
  writeFileSync(join(dir, 'empty'), '');
  writeFileSync(Buffer.from(`${dir}/${NON_UTF8_NAME.toString('latin1')}`, 'latin1'), 'bytes\n');
  writeFileSync(join(dir, 'small.txt'), 'small file\n');
  linkSync(join(dir, 'a/b/c/deep.txt'), join(dir, 'hard'));
  execFileSync('mkfifo', [join(dir, 'fifo')]);
  writeFileSync(join(dir, 'owned'), 'owned by someone else\n');
  chownSync(join(dir, 'owned'), 1234, 5678);
  chmodSync(join(dir, 'owned'), 0o4751);
  chmodSync(join(dir, 'a/b'), 0o750);
  // Before 1970: the seconds are signed. (mke2fs -d writes no nanoseconds or epoch bits.)
  utimesSync(join(dir, 'small.txt'), new Date(0), new Date(-86_400 * 365 * 1000));
  utimesSync(join(dir, 'a/b/c/deep.txt'), 1_000_000, 1_500_000_000);
  if (bigDir > 0) {
    mkdirSync(join(dir, 'big'));
    // Mostly symlinks, which take no data blocks, so that the image stays small.
    for (let i = 0; i < bigDir; i++) {
      const path = join(dir, 'big', `entry-${i}`);
      if (i % 10 === 0) writeFileSync(path, `${i}`);
      else symlinkSync(`target-${i}`, path);
    }
  }
}

/** Makes an ext2/3/4 image of `source` with mke2fs (e2fsprogs), passing `args` through. */
export function makeImage(
  image: string,
  source: string,
  args: readonly string[],
  size = '16M',
): void {
  ensureCommand('mke2fs', 'e2fsprogs');
  run('mke2fs', ['-q', '-F', ...args, '-d', source, image, size]);
}

/** Rebuilds every directory's index (htree) as a fsck would: mke2fs -d writes them linear. */
export function indexDirectories(image: string): void {
  try {
    execFileSync('e2fsck', ['-fyD', image], { stdio: 'pipe' });
  } catch (error) {
    // Exit status 1 means "errors corrected": the directories were optimized.
    if ((error as { status?: number }).status !== 1) throw error;
  }
}

/** Runs a debugfs request on `image` (read-write with `write`) and returns its output. */
export function debugfs(image: string, request: string, write = false): string {
  ensureCommand('debugfs', 'e2fsprogs');
  return run('debugfs', [...(write ? ['-w'] : []), '-R', request, image]);
}

function run(command: string, args: readonly string[]): string {
  try {
    return execFileSync(command, args, { stdio: 'pipe' }).toString();
  } catch (error) {
    const e = error as { stderr?: Buffer; message: string };
    throw new Error(`${command} ${args.join(' ')} failed: ${e.stderr?.toString() ?? e.message}`);
  }
}

/** A disk held in memory that counts its reads. */
export function countingDisk(image: Buffer): DiskReader & { reads: number } {
  const disk = {
    size: image.length,
    reads: 0,
    read: async (offset: number, length: number) => {
      disk.reads++;
      if (offset < 0 || length < 0 || offset + length > image.length)
        throw new Error(`read of ${length} at ${offset} is outside the image`);
      return Buffer.from(image.subarray(offset, offset + length));
    },
  };
  return disk;
}

/**
 * Expects the volume's tree under `path` to equal the directory `source` byte for byte: names,
 * types, sizes, modes, owners, modification seconds, symlink targets and content. Returns the
 * number of entries compared. `lost+found` at the root is the file system's own.
 */
export async function expectSameTree(
  volume: Ext4Volume,
  source: string | Buffer,
  path: Buffer = Buffer.from('/'),
): Promise<number> {
  const atRoot = path.equals(Buffer.from('/'));
  const listed = (await volume.list(path)).filter(
    (e) => !(atRoot && e.displayName === 'lost+found'),
  );
  const names = readdirSync(source, { encoding: 'buffer' });
  const hex = (list: Buffer[]) => list.map((n) => n.toString('hex')).sort();
  expect(hex(listed.map((e) => e.name))).toEqual(hex(names));
  let compared = 0;
  for (const entry of listed) {
    const sourcePath = Buffer.concat([Buffer.from(source), Buffer.from('/'), entry.name]);
    const childPath = Buffer.concat([
      path,
      atRoot ? Buffer.alloc(0) : Buffer.from('/'),
      entry.name,
    ]);
    const stat = lstatSync(sourcePath);
    const expected = {
      size: stat.isDirectory() ? entry.size : stat.size,
      mode: stat.mode & 0o7777,
      uid: stat.uid,
      gid: stat.gid,
      seconds: Math.floor(stat.mtimeMs / 1000),
    };
    const seconds = Math.floor(entry.mtime / 1000);
    expect({ ...entry, seconds }).toMatchObject(expected);
    compared++;
    if (stat.isDirectory()) {
      expect(entry.type).toBe('dir');
      compared += await expectSameTree(volume, sourcePath, childPath);
    } else if (stat.isSymbolicLink()) {
      expect(entry.type).toBe('symlink');
      expect(entry.linkTarget).toEqual(readlinkSync(sourcePath, { encoding: 'buffer' }));
    } else if (stat.isFile()) {
      expect(entry.type).toBe('file');
      const content = await volume.readFile(entry.inode, 0, entry.size);
      expect(content.equals(readFileSync(sourcePath))).toBe(true);
    } else if (stat.isFIFO()) expect(entry.type).toBe('fifo');
  }
  return compared;
}
