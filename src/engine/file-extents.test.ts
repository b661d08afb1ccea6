import { existsSync } from 'node:fs';
import { mkdtemp, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fileDataExtents, parseFilefrag } from './file-extents.js';

const SAMPLE = `Filesystem type is: ef53
File size of /data/disk.img is 10485760 (2560 blocks of 4096 bytes)
 ext:     logical_offset:        physical_offset: length:   expected: flags:
   0:      256..     511:    6413568..   6413823:    256:       1280:
   1:      512..     767:    6414848..   6415103:    256:            
   2:     2048..    2048:          0..         0:      0:             unknown_loc,delalloc
   3:     2559..    2559:    6416128..   6416128:      1:             last,eof
/data/disk.img: 3 extents found
`;

describe('parseFilefrag', () => {
  it('reads logical ranges in the stated block size, merging neighbours and clamping to the size', () => {
    expect(parseFilefrag(SAMPLE, 10_485_000)).toEqual([
      { offset: 1 << 20, length: 2 << 20 },
      { offset: 2048 * 4096, length: 4096 },
      { offset: 2559 * 4096, length: 10_485_000 - 2559 * 4096 },
    ]);
  });

  it('takes a file without extents as all holes', () => {
    const none = `Filesystem type is: ef53
File size of /x is 10485760 (2560 blocks of 4096 bytes)
/x: 0 extents found
`;
    expect(parseFilefrag(none, 10_485_760)).toEqual([]);
  });

  it('trusts nothing unexpected: FIBMAP output, a strange row, a missing header or count', () => {
    expect(parseFilefrag(SAMPLE.replace('Filesystem type', 'FIBMAP used; type'), 1e7)).toBe(
      undefined,
    );
    expect(parseFilefrag(SAMPLE.replace('   1:      512..', '   1:  what..'), 1e7)).toBe(undefined);
    expect(parseFilefrag(SAMPLE.replace('blocks of 4096 bytes', 'blocks'), 1e7)).toBe(undefined);
    expect(parseFilefrag(SAMPLE.replace('3 extents found', 'done'), 1e7)).toBe(undefined);
    expect(parseFilefrag('/x: FIBMAP/FIEMAP unsupported\n', 1e7)).toBe(undefined);
  });
});

describe('fileDataExtents', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'holdfast-extents-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('finds data just written and not yet flushed, and every byte outside it is zero', async () => {
    const path = join(dir, 'sparse.img');
    const size = 64 << 20;
    const handle = await open(path, 'w');
    await handle.truncate(size);
    const writes = [3 << 20, (17 << 20) + 12345, size - 4096];
    for (const [i, at] of writes.entries())
      await handle.write(Buffer.alloc(3000, i + 1), 0, 3000, at);
    // No sync: the extent query must see data still in the page cache.
    await handle.close();
    const extents = await fileDataExtents(path);
    expect(extents).toBeDefined();
    for (const at of writes)
      expect(extents!.some((r) => r.offset <= at && at + 3000 <= r.offset + r.length)).toBe(true);
    const covered = extents!.reduce((n, r) => n + r.length, 0);
    expect(covered).toBeLessThan(1 << 20);
    const bytes = await readFile(path);
    let outside = 0;
    let at = 0;
    for (const r of [...extents!, { offset: size, length: 0 }]) {
      for (; at < r.offset; at++) outside |= bytes[at]!;
      at = r.offset + r.length;
    }
    expect(outside).toBe(0);
  });

  it('says nothing when the path no longer names the file the caller has open', async () => {
    const path = join(dir, 'sparse.img');
    const handle = await open(path, 'w');
    await handle.truncate(16 << 20);
    await handle.write(Buffer.alloc(4096, 1), 0, 4096, 1 << 20);
    const opened = await handle.stat();
    await handle.close();
    expect(await fileDataExtents(path, opened)).toBeDefined();
    // Another sparse file renamed into its place.
    const other = join(dir, 'other.img');
    const second = await open(other, 'w');
    await second.truncate(16 << 20);
    await second.close();
    await rename(other, path);
    expect(await fileDataExtents(path, opened)).toBe(undefined);
  });

  it('says nothing for a file without holes, a directory or a missing file', async () => {
    const full = join(dir, 'full.bin');
    await writeFile(full, Buffer.alloc(1 << 20, 7));
    expect(await fileDataExtents(full)).toBe(undefined);
    expect(await fileDataExtents(dir)).toBe(undefined);
    expect(await fileDataExtents(join(dir, 'missing'))).toBe(undefined);
  });

  it('says nothing on a file system without an extent map (tmpfs)', async () => {
    // /dev/shm is tmpfs on every Linux this runs on; without it there is nothing to show.
    expect(existsSync('/dev/shm'), '/dev/shm (tmpfs) is missing on this machine').toBe(true);
    const shm = await mkdtemp('/dev/shm/holdfast-extents-');
    try {
      const path = join(shm, 'sparse.img');
      const handle = await open(path, 'w');
      await handle.truncate(8 << 20);
      await handle.write(Buffer.alloc(4096, 1), 0, 4096, 1 << 20);
      await handle.close();
      expect(await fileDataExtents(path)).toBe(undefined);
    } finally {
      await rm(shm, { recursive: true, force: true });
    }
  });
});
