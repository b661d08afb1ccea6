import fc from 'fast-check';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { HoldfastError } from '../../core/index.js';
import { openExt4, type Ext4Volume } from './ext4-volume.js';
import { extractFromExt4 } from './extract.js';
import { countingDisk, debugfs, indexDirectories, makeImage, seededBytes } from './ext4.testkit.js';

const BLOCK = 1024;
let dir: string;
let image: Buffer;
/** Byte ranges of the image holding metadata: where the random damage goes. */
let regions: Array<{ start: number; length: number }>;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'holdfast-ext4-damage-'));
  const source = join(dir, 'source');
  mkdirSync(join(source, 'd/e'), { recursive: true });
  writeFileSync(join(source, 'd/e/f'), seededBytes(3000, 2));
  writeFileSync(join(source, 'g'), seededBytes(20_000, 3));
  writeFileSync(join(source, 'sparse'), Buffer.concat([Buffer.alloc(300_000), Buffer.from('end')]));
  writeFileSync(join(source, 'empty'), '');
  symlinkSync('d/e/f', join(source, 'short-link'));
  symlinkSync('x'.repeat(100), join(source, 'long-link'));
  // Small groups without flex_bg break this file into pieces: its extent tree needs a leaf block.
  writeFileSync(join(source, 'pieces'), seededBytes(1_300_000, 4));
  mkdirSync(join(source, 'indexed'));
  for (let i = 0; i < 60; i++) writeFileSync(join(source, 'indexed', `${'n'.repeat(40)}-${i}`), '');
  const path = join(dir, 'image.img');
  const options = ['-O', '^has_journal,^flex_bg,^resize_inode', '-g', '256', '-N', '128'];
  makeImage(path, source, ['-t', 'ext4', '-b', `${BLOCK}`, ...options], '3M');
  indexDirectories(path);
  image = readFileSync(path);
  const inodeTable = /inode table at (\d+)/.exec(debugfs(path, 'stats'));
  const blocksOf = (p: string) => debugfs(path, `blocks ${p}`).trim().split(/\s+/).map(Number);
  const leaf = /\(ETB0\):(\d+)/.exec(debugfs(path, 'stat /pieces'));
  expect(leaf).not.toBeNull();
  const at = (block: number) => ({ start: block * BLOCK, length: BLOCK });
  regions = [
    { start: 1024, length: 1024 }, // superblock
    at(2), // group descriptors
    { start: Number(inodeTable![1]) * BLOCK, length: 16 * 256 }, // inodes 1–16 (group 0)
    at(blocksOf('/')[0]!), // the root directory
    at(blocksOf('/d')[0]!), // a directory below it
    at(Number(leaf![1])), // an extent tree leaf
    at(blocksOf('/indexed')[0]!), // an htree root
    at(blocksOf('/indexed')[1]!), // an htree node or leaf
  ];
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Lists every directory once and reads every file (its first MiB), as a browser would. */
async function walk(volume: Ext4Volume): Promise<void> {
  const seen = new Set<number>();
  const visit = async (inode: number): Promise<void> => {
    if (seen.has(inode)) return;
    seen.add(inode);
    for (const entry of await volume.list(inode)) {
      if (entry.type === 'dir') await visit(entry.inode);
      else if (entry.type === 'file')
        await volume.readFile(entry.inode, 0, Math.min(entry.size, 1024 * 1024));
    }
  };
  await visit(volume.rootInode);
}

function expectUnreadable(error: unknown): void {
  expect(error).toBeInstanceOf(HoldfastError);
  expect((error as HoldfastError).code).toBe('SOURCE_UNREADABLE');
}

it('answers random damage to the metadata with a result or SOURCE_UNREADABLE, in bounded reads', async () => {
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.tuple(
          fc.integer({ min: 0, max: 7 }),
          fc.integer({ min: 0, max: 16 * 256 - 1 }),
          fc.integer({ min: 0, max: 255 }),
        ),
        { minLength: 1, maxLength: 8 },
      ),
      async (flips) => {
        const copy = Buffer.from(image);
        for (const [region, offset, value] of flips) {
          const { start, length } = regions[region]!;
          copy[start + (offset % length)] = value;
        }
        const disk = countingDisk(copy);
        const volume = await openExt4(disk).catch((error: unknown) => expectUnreadable(error));
        if (volume === undefined) return;
        await walk(volume).catch((error: unknown) => expectUnreadable(error));
        // Metadata comes in cached 64 KiB chunks and each file's data in one read per run: the
        // whole 3 MiB file system takes about twenty reads, damaged or not.
        expect(disk.reads).toBeLessThan(60);
        const parent = join(dir, `run-${runs++}`);
        const result = await extractFromExt4(volume, ['/'], join(parent, 'target'));
        for (const warning of result.warnings)
          if (warning.kind === 'failed')
            expect(['SOURCE_UNREADABLE', 'RESTORE_UNSAFE_ENTRY', 'RESTORE_WRITE_FAILED']).toContain(
              warning.error.code,
            );
        expect(readdirSync(parent)).toEqual(['target']);
        rmSync(parent, { recursive: true, force: true });
      },
    ),
    { numRuns: 200, seed: 0xe4f5 },
  );
});
