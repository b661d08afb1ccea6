import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectFailure } from '../../core/failure.testkit.js';
import { openDisk, type OpenDisk } from '../disk-reader.js';
import { openExt4, type Ext4Volume } from './ext4-volume.js';
import { extractFromExt4 } from './extract.js';
import {
  indexDirectories,
  makeImage,
  NON_UTF8_NAME,
  populateSource,
  SPARSE_SIZE,
} from './ext4.testkit.js';

let dir: string;
let source: string;
let disk: OpenDisk;
let volume: Ext4Volume;
let targets = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'holdfast-ext4-extract-'));
  source = join(dir, 'source');
  populateSource(source, 500);
  const image = join(dir, 'image.img');
  makeImage(image, source, ['-t', 'ext4', '-b', '4096']);
  indexDirectories(image);
  disk = await openDisk(image);
  volume = await openExt4(disk);
});
afterAll(async () => {
  await disk.close();
  rmSync(dir, { recursive: true, force: true });
});

function freshTarget(): string {
  return join(dir, `target-${++targets}`);
}

/**
 * Expects `copy` to hold what `original` holds, byte for byte: names, types, modes, owners,
 * modification seconds, content and symlink targets. `skip` names entries not extracted.
 */
function expectSameFiles(copy: Buffer, original: Buffer, skip: readonly string[] = []): number {
  const names = (path: Buffer) =>
    readdirSync(path, { encoding: 'buffer' })
      .filter((n) => !skip.includes(n.toString()))
      .map((n) => n.toString('hex'))
      .sort();
  expect(names(copy)).toEqual(names(original));
  let count = 0;
  for (const hex of names(original)) {
    const name = Buffer.from(hex, 'hex');
    const from = Buffer.concat([original, Buffer.from('/'), name]);
    const to = Buffer.concat([copy, Buffer.from('/'), name]);
    const [a, b] = [lstatSync(from), lstatSync(to)];
    const shape = (s: typeof a) => ({
      type: s.isDirectory() ? 'dir' : s.isSymbolicLink() ? 'symlink' : s.isFile() ? 'file' : '?',
      mode: s.isSymbolicLink() ? 0 : s.mode & 0o7777,
      uid: s.uid,
      gid: s.gid,
      size: s.isDirectory() ? 0 : s.size,
      seconds: Math.floor(s.mtimeMs / 1000),
    });
    expect({ path: to.toString(), ...shape(b) }).toEqual({ path: to.toString(), ...shape(a) });
    count++;
    if (a.isDirectory()) count += expectSameFiles(to, from);
    else if (a.isSymbolicLink())
      expect(readlinkSync(to, { encoding: 'buffer' })).toEqual(
        readlinkSync(from, { encoding: 'buffer' }),
      );
    else expect(readFileSync(to).equals(readFileSync(from))).toBe(true);
  }
  return count;
}

describe('extractFromExt4', () => {
  it('extracts the whole file system byte for byte, keeping holes and hard links', async () => {
    const target = freshTarget();
    const result = await extractFromExt4(volume, ['/'], target);
    expect(result.warnings).toEqual([
      { kind: 'skipped', path: '/fifo', reason: expect.stringMatching(/fifo is not extracted/) },
    ]);
    // lost+found, a, a/b, a/b/c and big.
    expect(result).toMatchObject({ hardLinks: 1, directories: 5 });
    expect(result.symlinks).toBe(2 + 450);
    const compared = expectSameFiles(Buffer.from(target), Buffer.from(source), [
      'fifo',
      'lost+found',
    ]);
    expect(compared).toBe(
      result.files + result.directories + result.symlinks + result.hardLinks - 1,
    );
    // lost+found is the file system's own: extracted too, empty.
    expect(readdirSync(join(target, 'lost+found'))).toEqual([]);
    const sparse = lstatSync(join(target, 'sparse'));
    expect(sparse.size).toBe(SPARSE_SIZE);
    expect(sparse.blocks * 512).toBeLessThan(64 * 1024);
    expect(lstatSync(join(target, 'hard')).ino).toBe(lstatSync(join(target, 'a/b/c/deep.txt')).ino);
    expect(result.bytes).toBeLessThan(6 * 1024 * 1024);
  });

  it('extracts chosen paths under their own names', async () => {
    const target = freshTarget();
    const odd = Buffer.concat([Buffer.from('/'), NON_UTF8_NAME]);
    const result = await extractFromExt4(volume, ['/a/b', '/link', odd], target);
    expect(result).toMatchObject({ files: 2, directories: 2, symlinks: 1, warnings: [] });
    expect(readFileSync(join(target, 'b/c/deep.txt'), 'utf8')).toBe('deep inside\n');
    expect(lstatSync(join(target, 'b')).mode & 0o777).toBe(0o750);
    expect(readlinkSync(join(target, 'link'))).toBe('a/large.bin');
    const oddPath = Buffer.concat([Buffer.from(`${target}/`), NON_UTF8_NAME]);
    expect(readFileSync(oddPath, 'utf8')).toBe('bytes\n');
    // Asking again for a directory already extracted merges into it; it is not a directory link.
    const again = await extractFromExt4(volume, ['/a/b/c', '/a/b/c'], join(target, 'b'));
    expect(again.warnings.map((w) => [w.path, w.kind])).toEqual([
      ['/c/deep.txt', 'skipped'],
      ['/c/deep.txt', 'skipped'],
    ]);
    expect(again.directories).toBe(2);
  });

  it('never writes through what is already in the target', async () => {
    const target = freshTarget();
    const outside = join(dir, 'outside');
    mkdirSync(target);
    mkdirSync(outside);
    writeFileSync(join(outside, 'victim.txt'), 'untouched');
    symlinkSync(outside, join(target, 'a'));
    symlinkSync(join(outside, 'victim.txt'), join(target, 'small.txt'));
    const kept = await extractFromExt4(volume, ['/a', '/small.txt'], target);
    expect(kept.warnings.map((w) => [w.kind, w.path])).toEqual([
      ['skipped', '/a'],
      ['skipped', '/small.txt'],
    ]);
    expect(readdirSync(outside)).toEqual(['victim.txt']);
    const replaced = await extractFromExt4(volume, ['/a', '/small.txt'], target, {
      overwrite: true,
    });
    expect(replaced.warnings).toEqual([]);
    expect(lstatSync(join(target, 'a')).isDirectory()).toBe(true);
    expect(readFileSync(join(target, 'small.txt'), 'utf8')).toBe('small file\n');
    expect(readdirSync(outside)).toEqual(['victim.txt']);
    expect(readFileSync(join(outside, 'victim.txt'), 'utf8')).toBe('untouched');
  });

  it('refuses an unusable target, and missing paths before writing anything', async () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, '');
    expect((await expectFailure(extractFromExt4(volume, ['/a'], file))).code).toBe(
      'RESTORE_TARGET_INVALID',
    );
    const link = join(dir, 'a-link');
    symlinkSync(dir, link);
    expect((await expectFailure(extractFromExt4(volume, ['/a'], link))).code).toBe(
      'RESTORE_TARGET_INVALID',
    );
    const target = freshTarget();
    const missing = await expectFailure(extractFromExt4(volume, ['/a', '/missing'], target));
    expect(missing.code).toBe('RESOURCE_NOT_FOUND');
    expect(existsSync(target)).toBe(false);
  });

  it('stops when cancelled', async () => {
    const controller = new AbortController();
    controller.abort();
    const error = await expectFailure(
      extractFromExt4(volume, ['/'], freshTarget(), { signal: controller.signal }),
    );
    expect(error.code).toBe('CANCELLED');
  });
});
