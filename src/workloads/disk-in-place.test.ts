import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeDiskInPlace } from './disk-in-place.js';
import { memoryDisk, patternBytes } from './disk-images.testkit.js';
import { IMAGE_BLOCK } from '../engine/index.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'holdfast-in-place-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('writing a disk in place', () => {
  it('writes only the blocks that differ, keeps what lies past the disk, and then compares equal', async () => {
    const size = 20 * IMAGE_BLOCK + 1000;
    const wanted = patternBytes(size, 1);
    const device = join(dir, 'device');
    const present = Buffer.concat([Buffer.from(wanted), Buffer.alloc(IMAGE_BLOCK, 0x5a)]);
    present.fill(0, 3 * IMAGE_BLOCK + 17, 3 * IMAGE_BLOCK + 99);
    present[12 * IMAGE_BLOCK] = present[12 * IMAGE_BLOCK]! ^ 1;
    present[size - 1] = present[size - 1]! ^ 1;
    await writeFile(device, present);

    const before = await writeDiskInPlace(memoryDisk(wanted), device, { compareOnly: true });
    expect(before.bytesWritten).toBe(2 * IMAGE_BLOCK + 1000);
    expect((await readFile(device)).equals(present)).toBe(true);

    const seen: number[] = [];
    const result = await writeDiskInPlace(memoryDisk(wanted), device, {
      onBytes: (n) => seen.push(n),
    });
    expect(result).toEqual({ bytesCompared: size, bytesWritten: 2 * IMAGE_BLOCK + 1000 });
    expect(seen[seen.length - 1]).toBe(size);
    const after = await readFile(device);
    expect(after.subarray(0, size).equals(wanted)).toBe(true);
    expect(after.subarray(size).equals(Buffer.alloc(IMAGE_BLOCK, 0x5a))).toBe(true);
    expect(
      (await writeDiskInPlace(memoryDisk(wanted), device, { compareOnly: true })).bytesWritten,
    ).toBe(0);
  });

  it('refuses a device smaller than the disk before writing anything', async () => {
    const device = join(dir, 'small');
    await writeFile(device, Buffer.alloc(IMAGE_BLOCK, 1));
    await expect(
      writeDiskInPlace(memoryDisk(patternBytes(2 * IMAGE_BLOCK, 2)), device),
    ).rejects.toThrow(/holds 524288 bytes, less than the 1048576 of the disk/);
    expect((await readFile(device)).equals(Buffer.alloc(IMAGE_BLOCK, 1))).toBe(true);
  });
});
