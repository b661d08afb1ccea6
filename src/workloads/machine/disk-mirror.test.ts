import { mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ensureCommand, mountXfs } from '../../core/os-tools.testkit.js';
import { patternBytes } from '../disk-images.testkit.js';
import { IMAGE_BLOCK } from '../../engine/index.js';
import { cloneOrCopyMirror, finishClone } from './disk-mirror.js';

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

describe('disk mirrors of sparse images', () => {
  it('copies only the data extents, then finds exactly the blocks that changed, holes included', async () => {
    const source = join(dir, 'disk.img');
    const mirror = join(dir, 'disk.mirror');
    const handle = await open(source, 'w');
    await handle.truncate(SIZE);
    await handle.close();
    // Forty short extents, most of them not block-aligned.
    for (let i = 0; i < 40; i++)
      await writeAt(source, i * 3 * IMAGE_BLOCK + i * 4099, patternBytes(70_000, i));

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
    await writeAt(source, intoHole, patternBytes(1000, 99));
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
    await writeAt(source, IMAGE_BLOCK, patternBytes(4096, 1));
    await (await cloneOrCopyMirror(source, mirror)).settle();
    await writeAt(source, 5 * IMAGE_BLOCK, patternBytes(4096, 2));
    const interrupted = await cloneOrCopyMirror(source, mirror);
    expect(interrupted.changed).toEqual([{ offset: 5 * IMAGE_BLOCK, length: IMAGE_BLOCK }]);
    // Never settled (as after a crash): the map is gone.
    await writeAt(source, 6 * IMAGE_BLOCK, patternBytes(4096, 3));
    const next = await cloneOrCopyMirror(source, mirror);
    expect(next.changed).toBe(undefined);
    expect((await readFile(mirror)).equals(await readFile(source))).toBe(true);
  });
});

describe('mirrors on a copy-on-write file system (XFS with reflink, on a loop device)', () => {
  let unmount: (() => void) | undefined;
  beforeAll(() => ensureCommand('losetup', 'mount'), 600_000);
  afterEach(() => {
    unmount?.();
    unmount = undefined;
  });

  it('clones the disk, then reads only the blocks that are no longer shared with the last clone', async () => {
    const xfs = mountXfs(dir);
    unmount = xfs.unmount;
    const mount = xfs.path;
    const source = join(mount, 'disk.img');
    const mirror = join(mount, 'disk.mirror');
    await writeFile(source, patternBytes(40 * IMAGE_BLOCK, 7));
    await writeAt(source, 100 * IMAGE_BLOCK - 4096, patternBytes(4096, 8)); // a hole before it

    const first = await cloneOrCopyMirror(source, mirror);
    expect(first.cloned).toBe(true);
    const firstDone = await finishClone(mirror, first);
    await firstDone.settle();
    expect(firstDone.changed).toBe(undefined);
    expect(firstDone.bytesRead).toBe(41 * IMAGE_BLOCK);

    // Two blocks change; written and flushed, as a running machine's writes would be.
    await writeAt(source, 5 * IMAGE_BLOCK + 100, patternBytes(1000, 9));
    await writeAt(source, 30 * IMAGE_BLOCK, patternBytes(IMAGE_BLOCK, 10));
    const second = await cloneOrCopyMirror(source, mirror);
    expect(second.cloned).toBe(true);
    const secondDone = await finishClone(mirror, second);
    // The map first, then the source's identity.
    await secondDone.settle();
    expect(secondDone.changed).toEqual([
      { offset: 5 * IMAGE_BLOCK, length: IMAGE_BLOCK },
      { offset: 30 * IMAGE_BLOCK, length: IMAGE_BLOCK },
    ]);
    // Only the blocks no longer shared were read (the file system's block size may make the
    // written stretches a little wider than the writes, never narrower).
    expect(secondDone.bytesRead).toBe(2 * IMAGE_BLOCK);
    expect((await readFile(mirror)).equals(await readFile(source))).toBe(true);

    // Unchanged, and looked at over two seconds after its last write: cloned once more, all of
    // it shared, nothing read; from then on not even cloned.
    await new Promise((resolve) => setTimeout(resolve, 2100));
    const third = await cloneOrCopyMirror(source, mirror);
    const thirdDone = await finishClone(mirror, third);
    expect(thirdDone).toMatchObject({ changed: [], bytesRead: 0 });
    await thirdDone.settle();
    const idle = await cloneOrCopyMirror(source, mirror);
    expect(idle).toMatchObject({ cloned: false, changed: [], bytesRead: 0 });
  });
});
