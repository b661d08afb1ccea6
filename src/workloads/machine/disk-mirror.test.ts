import { mkdtemp, open, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IMAGE_BLOCK } from '../image-blocks.js';
import { cloneOrCopyMirror } from './disk-mirror.js';

const SIZE = 256 * IMAGE_BLOCK; // 128 MiB, enough to hash on worker threads when built

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'holdfast-mirror-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Writes `data` at `at` into the file without syncing it. */
async function writeAt(path: string, at: number, data: Buffer): Promise<void> {
  const handle = await open(path, 'r+');
  await handle.write(data, 0, data.length, at);
  await handle.close();
}

function pattern(length: number, seed: number): Buffer {
  const data = Buffer.alloc(length);
  for (let i = 0; i < length; i += 4) data.writeUInt32LE((i * 2654435761 + seed) >>> 0, i);
  return data;
}

describe('disk mirrors of sparse images', () => {
  it('copies only the data extents, then finds exactly the blocks that changed, holes included', async () => {
    const source = join(dir, 'disk.img');
    const mirror = join(dir, 'disk.mirror');
    const handle = await open(source, 'w');
    await handle.truncate(SIZE);
    await handle.close();
    // Forty short extents, most of them not block-aligned.
    for (let i = 0; i < 40; i++)
      await writeAt(source, i * 3 * IMAGE_BLOCK + i * 4099, pattern(70_000, i));

    const first = await cloneOrCopyMirror(source, mirror);
    expect(first.changed).toBe(undefined);
    // Until the refresh has settled, its map is not recorded: the next one would copy it all.
    await first.settle();
    // Only blocks holding data were read; at most two blocks per extent.
    expect(first.bytesRead).toBeGreaterThan(0);
    expect(first.bytesRead).toBeLessThanOrEqual(80 * IMAGE_BLOCK);
    expect((await readFile(mirror)).equals(await readFile(source))).toBe(true);
    // The file system's own extent blocks may count too: a little slack.
    expect((await stat(mirror)).blocks * 512).toBeLessThanOrEqual(first.bytesRead + 65536);

    // Data into a hole, zeros over data, and one byte changed; just written, not synced.
    const intoHole = 200 * IMAGE_BLOCK + 5000;
    await writeAt(source, intoHole, pattern(1000, 99));
    await writeAt(source, 3 * IMAGE_BLOCK + 4099, Buffer.alloc(70_000));
    await writeAt(source, 9 * IMAGE_BLOCK + 3 * 4099 + 10, Buffer.from([0xee]));
    const second = await cloneOrCopyMirror(source, mirror);
    expect(second.changed).toEqual([
      { offset: 3 * IMAGE_BLOCK, length: IMAGE_BLOCK },
      { offset: 9 * IMAGE_BLOCK, length: IMAGE_BLOCK },
      { offset: 200 * IMAGE_BLOCK, length: IMAGE_BLOCK },
    ]);
    expect(second.bytesCopied).toBe(3 * IMAGE_BLOCK);
    await second.settle();
    expect((await readFile(mirror)).equals(await readFile(source))).toBe(true);
  });
});

describe('an unsettled refresh', () => {
  it('leaves no map, so the next refresh copies everything', async () => {
    const source = join(dir, 'disk.img');
    const mirror = join(dir, 'disk.mirror');
    const handle = await open(source, 'w');
    await handle.truncate(8 * IMAGE_BLOCK);
    await handle.close();
    await writeAt(source, IMAGE_BLOCK, pattern(4096, 1));
    await (await cloneOrCopyMirror(source, mirror)).settle();
    await writeAt(source, 5 * IMAGE_BLOCK, pattern(4096, 2));
    const interrupted = await cloneOrCopyMirror(source, mirror);
    expect(interrupted.changed).toEqual([{ offset: 5 * IMAGE_BLOCK, length: IMAGE_BLOCK }]);
    // Never settled (as after a crash): the map is gone.
    await writeAt(source, 6 * IMAGE_BLOCK, pattern(4096, 3));
    const next = await cloneOrCopyMirror(source, mirror);
    expect(next.changed).toBe(undefined);
    expect((await readFile(mirror)).equals(await readFile(source))).toBe(true);
  });
});
