import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gptImage } from './disk-images.testkit.js';
import { openDisk, sizeByReading } from './disk-reader.js';
import { readPartitionTable } from './partition-table.js';

const SECTOR = 512;
const LINUX = '0FC63DAF-8483-4772-8E79-3D69D8477DE4';
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'holdfast-disk-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** mke2fs from e2fsprogs; a test that needs it fails saying so. */
function mke2fs(args: string[]): void {
  try {
    execFileSync('mke2fs', args, { stdio: 'pipe' });
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: Buffer };
    if (e.code === 'ENOENT')
      throw new Error('mke2fs is missing: install e2fsprogs (apt-get install e2fsprogs).');
    throw new Error(`mke2fs ${args.join(' ')} failed: ${e.stderr?.toString() ?? e.message}`);
  }
}

describe('openDisk', () => {
  it('finds a real ext4 file system inside a GPT partition of an image file', async () => {
    const path = join(dir, 'disk.img');
    const first = 2048;
    const last = 2048 + 8 * 2048 - 1; // 8 MiB
    writeFileSync(
      path,
      gptImage(first + 16 * 2048, [
        { type: LINUX, uuid: '0A0B0C0D-0E0F-4000-8000-000000000001', first, last, name: 'data' },
      ]),
    );
    // The file system goes into the partition only: mke2fs writes at the partition's offset.
    mke2fs([
      '-q',
      '-t',
      'ext4',
      '-F',
      '-L',
      'holdfast',
      '-E',
      `offset=${first * SECTOR}`,
      path,
      '8M',
    ]);
    const disk = await openDisk(path);
    try {
      const table = await readPartitionTable(disk);
      expect(table.scheme).toBe('gpt');
      const [partition] = table.partitions;
      expect(partition).toMatchObject({ number: 1, offset: first * SECTOR, kind: 'linux' });
      // The ext4 superblock: 1 KiB into the partition, magic 0xEF53 at 56, label at 120.
      const superblock = await disk.read(partition!.offset + 1024, 1024);
      expect(superblock.readUInt16LE(56)).toBe(0xef53);
      expect(superblock.subarray(120, 128).toString('latin1')).toBe('holdfast');
      await expect(disk.read(disk.size - 10, 20)).rejects.toThrow(/outside the/);
    } finally {
      await disk.close();
    }
  });

  it('measures a length by reading, as for a block device', async () => {
    for (const size of [0, 1, 2, 4095, 4096, 1_000_007]) {
      const path = join(dir, `size-${size}`);
      writeFileSync(path, Buffer.alloc(size, 1));
      const handle = await open(path, 'r');
      try {
        expect(await sizeByReading(handle)).toBe(size);
      } finally {
        await handle.close();
      }
    }
  });
});
