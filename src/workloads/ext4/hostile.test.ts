import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectFailure } from '../../core/failure.testkit.js';
import { openExt4 } from './ext4-volume.js';
import { extractFromExt4 } from './extract.js';
import { countingDisk, debugfs, makeImage, populateSource } from './ext4.testkit.js';

const SB = 1024;
let dir: string;
let imagePath: string;
let image: Buffer;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'holdfast-ext4-hostile-'));
  const source = join(dir, 'source');
  populateSource(source, 0);
  for (const name of ['zz_slash', '.x', '..x', 'nul_x'])
    writeFileSync(join(source, name), `${name}\n`);
  imagePath = join(dir, 'image.img');
  makeImage(imagePath, source, ['-t', 'ext4', '-b', '1024']);
  image = readFileSync(imagePath);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Byte offset of the inode at `path` in the image. */
function inodeAt(path: string, file = imagePath): number {
  const found = /located at block (\d+), offset 0x([0-9a-f]+)/.exec(debugfs(file, `imap ${path}`));
  if (!found) throw new Error(`debugfs imap ${path} said nothing useful`);
  return Number(found[1]) * 1024 + parseInt(found[2]!, 16);
}

/** Byte offset of the first data block of `path`. */
function firstBlockAt(path: string): number {
  return Number(debugfs(imagePath, `blocks ${path}`).trim().split(/\s+/)[0]) * 1024;
}

/** Byte offset of the record naming `name` in the root directory's first block. */
function recordOf(name: string): number {
  const root = firstBlockAt('/');
  const block = image.subarray(root, root + 1024);
  // The name follows the 8-byte header whose name length byte (offset 6) is the name's length.
  let at = block.indexOf(Buffer.from(name));
  while (at !== -1 && block[at - 2] !== name.length) at = block.indexOf(Buffer.from(name), at + 1);
  expect(at).toBeGreaterThan(8);
  return root + at - 8;
}

/** A copy of the image with `patch` applied, opened from memory. */
function damaged(patch: (copy: Buffer) => void) {
  const copy = Buffer.from(image);
  patch(copy);
  return openExt4(countingDisk(copy));
}

async function unreadable(promise: Promise<unknown>, message: RegExp): Promise<void> {
  const error = await expectFailure(promise);
  expect(error.code).toBe('SOURCE_UNREADABLE');
  expect(error.message).toMatch(message);
}

describe('hostile superblocks', () => {
  const cases: Array<[string, (b: Buffer) => void, RegExp]> = [
    ['no magic', (b) => b.writeUInt16LE(0, SB + 0x38), /magic 0xEF53/],
    ['encryption', (b) => orIncompat(b, 0x10000), /"encrypt"/],
    ['compression', (b) => orIncompat(b, 0x1), /"compression"/],
    ['a journal device', (b) => orIncompat(b, 0x8), /external journal device/],
    ['dirdata', (b) => orIncompat(b, 0x1000), /"dirdata"/],
    ['an unknown feature', (b) => orIncompat(b, 0x80000000), /unknown incompatible .*0x80000000/],
    ['a block size of 128 KiB', (b) => b.writeUInt32LE(7, SB + 0x18), /block size/],
    ['more blocks than the disk', (b) => b.writeUInt32LE(0x7fffffff, SB + 0x4), /holds only/],
    ['an inode size of 100', (b) => b.writeUInt16LE(100, SB + 0x58), /inode size 100/],
    ['a descriptor size of 48', (b) => b.writeUInt16LE(48, SB + 0xfe), /descriptor size 48/],
    ['no inodes per group', (b) => b.writeUInt32LE(0, SB + 0x28), /inodes per group/],
    ['too many inodes', (b) => b.writeUInt32LE(0xffffffff, SB + 0x0), /inodes do not fit/],
  ];
  for (const [what, patch, message] of cases)
    it(`refuses ${what}`, async () => {
      await unreadable(damaged(patch), message);
    });

  it('reads a file system whose journal was not replayed, saying so', async () => {
    const volume = await damaged((b) => orIncompat(b, 0x4));
    expect(volume.warnings).toEqual([expect.stringMatching(/not replayed/)]);
  });
});

function orIncompat(b: Buffer, bit: number): void {
  b.writeUInt32LE((b.readUInt32LE(SB + 0x60) | bit) >>> 0, SB + 0x60);
}

describe('hostile inodes, extent trees and directories', () => {
  it('refuses damaged extent trees', async () => {
    const root = inodeAt('/a/large.bin') + 0x28;
    const read = (patch: (b: Buffer) => void) =>
      damaged(patch).then((v) => v.readFile('/a/large.bin', 0, 4096));
    await unreadable(
      read((b) => b.writeUInt16LE(6, root + 6)),
      /depth 6, expected at most 5/,
    );
    await unreadable(
      read((b) => b.writeUInt16LE(0, root)),
      /no extent header/,
    );
    await unreadable(
      read((b) => b.writeUInt16LE(5, root + 2)),
      /more than it has room for/,
    );
    // The first extent's start, past the end of the file system.
    await unreadable(
      read((b) => b.writeUInt32LE(0x7fffffff, root + 12 + 8)),
      /outside the/,
    );
    await unreadable(
      read((b) => b.writeUInt16LE(0, root + 12 + 4)),
      /overlaps or is out of order/,
    );
  });

  it('refuses an index node whose depth disagrees with its parent', async () => {
    const source = join(dir, 'fragmented');
    mkdirSync(source);
    writeFileSync(join(source, 'large'), Buffer.alloc(3 * 1024 * 1024, 1));
    const path = join(dir, 'fragmented.img');
    makeImage(path, source, ['-t', 'ext4', '-b', '1024', '-O', '^flex_bg', '-g', '256']);
    const leaf = /\(ETB0\):(\d+)/.exec(debugfs(path, 'stat /large'));
    expect(leaf).not.toBeNull();
    const copy = readFileSync(path);
    copy.writeUInt16LE(1, Number(leaf![1]) * 1024 + 6);
    const volume = await openExt4(countingDisk(copy));
    await unreadable(volume.readFile('/large', 0, 10), /depth 1, expected 0/);
  });

  it('refuses directory records with a zero or overlong length, and inodes out of range', async () => {
    const rootBlock = firstBlockAt('/');
    const list = (patch: (b: Buffer) => void) => damaged(patch).then((v) => v.list('/'));
    await unreadable(
      list((b) => b.writeUInt16LE(0, rootBlock + 4)),
      /invalid length 0/,
    );
    await unreadable(
      list((b) => b.writeUInt16LE(2000, rootBlock + 4)),
      /invalid length 2000/,
    );
    await unreadable(
      list((b) => b.writeUInt16LE(13, rootBlock + 4)),
      /invalid length 13/,
    );
    const record = recordOf('zz_slash');
    await unreadable(
      damaged((b) => b.writeUInt32LE(0xfffffff0, record)).then((v) => v.stat('/zz_slash')),
      /inode number 4294967280 is out of range/,
    );
  });

  it('refuses absurd sizes', async () => {
    const file = inodeAt('/small.txt');
    await unreadable(
      damaged((b) => b.writeUInt32LE(0xffffffff, file + 0x6c)).then((v) => v.stat('/small.txt')),
      /impossible size/,
    );
    const folder = inodeAt('/a');
    await unreadable(
      damaged((b) => b.writeUInt32LE(0x100, folder + 0x6c)).then((v) => v.list('/a')),
      /directory inode \d+ has an impossible size/,
    );
  });
});

describe('hostile trees during extraction', () => {
  it('reports a directory loop and a directory linked twice, and extracts the rest', async () => {
    const path = join(dir, 'loops.img');
    writeFileSync(path, image);
    debugfs(path, 'link /a /a/b/loop', true);
    debugfs(path, 'link /a/b/c /twice', true);
    const volume = await openExt4(countingDisk(readFileSync(path)));
    expect((await volume.list('/a/b')).map((e) => e.displayName).sort()).toEqual(['c', 'loop']);
    const target = join(dir, 'loops');
    const result = await extractFromExt4(volume, ['/'], target);
    const failed = result.warnings.filter((w) => w.kind === 'failed');
    expect(failed.map((w) => [w.path, w.error.code, w.error.message])).toEqual(
      expect.arrayContaining([
        ['/a/b/loop', 'SOURCE_UNREADABLE', expect.stringMatching(/directory loop/)],
        [
          expect.stringMatching(/^\/(twice|a\/b\/c)$/),
          'SOURCE_UNREADABLE',
          expect.stringMatching(/linked a second time/),
        ],
      ]),
    );
    expect(failed).toHaveLength(2);
    expect(readFileSync(join(target, 'small.txt'), 'utf8')).toBe('small file\n');
  });

  it('refuses names with a slash, a NUL, or that are . or .., writing nothing outside the target', async () => {
    const copy = Buffer.from(image);
    copy[recordOf('zz_slash') + 8 + 2] = 0x2f;
    copy[recordOf('nul_x') + 8 + 3] = 0;
    copy[recordOf('.x') + 6] = 1;
    copy[recordOf('..x') + 6] = 2;
    const volume = await openExt4(countingDisk(copy));
    const parent = join(dir, 'names');
    const target = join(parent, 'target');
    const result = await extractFromExt4(volume, ['/'], target);
    const refused = result.warnings.filter((w) => w.kind === 'failed');
    expect(refused.map((w) => w.kind === 'failed' && w.error.code)).toEqual(
      Array(4).fill('RESTORE_UNSAFE_ENTRY'),
    );
    expect(refused.map((w) => w.path).sort()).toEqual(['/.', '/..', '/nul\\x00x', '/zz/slash']);
    expect(readdirSync(parent)).toEqual(['target']);
    expect(readdirSync(target)).not.toContain('zz');
    expect(readFileSync(join(target, 'small.txt'), 'utf8')).toBe('small file\n');
  });
});
