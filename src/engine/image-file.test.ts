import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryBackend } from '../backends/index.js';
import { memoryChunkSink as memorySink } from './engine.testkit.js';
import { FastCdcChunker } from './chunker.js';
import { backupPaths, makeTestVault, reopenTestVault } from './engine.testkit.js';
import type { ByteRange } from './file-extents.js';
import { saveFileContent, skippingHoles, type ChunkSink, type ReadAt } from './file-reader.js';
import { cutImageBlock, IMAGE_BLOCK } from './image-blocks.js';
import { chunkImageFile, cutsAsDiskImage } from './image-file.js';
import { Restorer } from './restorer.js';
import { appendPiece, type ContentPiece } from './tree.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** The reference cut: each aligned block of the whole buffer through cutImageBlock. */
function expectedContent(data: Buffer): ContentPiece[] {
  const content: ContentPiece[] = [];
  for (let b = 0; b < data.length; b += IMAGE_BLOCK) {
    for (const piece of cutImageBlock(data.subarray(b, b + IMAGE_BLOCK))) {
      if ('hole' in piece) appendPiece(content, piece.hole);
      else content.push(createHash('sha256').update(piece.data).digest('hex'));
    }
  }
  return content;
}

/** Asynchronous reads of `data` of at most `step` bytes each, recording what was asked. */
function reader(data: Buffer, step: number, asked: ByteRange[] = []): ReadAt {
  return (buffer, offset, length, position) =>
    new Promise((resolve) =>
      setImmediate(() => {
        const n = Math.max(0, Math.min(length, step, data.length - position));
        asked.push({ offset: position, length: n });
        data.copy(buffer, offset, position, position + n);
        resolve(n);
      }),
    );
}

/** `length` bytes of seeded pseudo-random data (never a long zero stretch). */
function noise(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let state = seed | 1;
  for (let i = 0; i < length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    out[i] = (state & 0xff) | 1;
  }
  return out;
}

/** A disk-like buffer: data stretches at the given (unaligned) offsets, zeros elsewhere. */
function diskLike(size: number, stretches: Array<[number, number]>): Buffer {
  const disk = Buffer.alloc(size);
  stretches.forEach(([at, length], i) => noise(length, i + 7).copy(disk, at));
  return disk;
}

describe('cutting a disk image file in aligned blocks', () => {
  it('cuts exactly as the machine path cuts the same bytes, however the reads fall', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 6 * MiB }),
        fc.array(fc.tuple(fc.nat(6 * MiB), fc.integer({ min: 1, max: 900 * KiB })), {
          maxLength: 6,
        }),
        fc.constantFrom(4096, 100_003, 1 * MiB, 64 * MiB),
        async (size, stretches, step) => {
          const disk = diskLike(
            size,
            stretches.map(([at, length]) => [at % size, Math.min(length, size - (at % size))]),
          );
          const sink = memorySink();
          const result = await chunkImageFile(reader(disk, step), size, undefined, {
            sink,
            onBytes: () => undefined,
          });
          expect(result.size).toBe(size);
          expect(result.content).toEqual(expectedContent(disk));
        },
      ),
      { numRuns: 40 },
    );
  });

  it('reads only what the extent map names, and stores the same blobs as a full read', async () => {
    const size = 40 * MiB + 12345;
    const data: ByteRange[] = [
      { offset: 3 * MiB + 4096, length: 200 * KiB },
      // The last bytes of a block: that block is data, not a hole.
      { offset: 8 * MiB - 100, length: 100 },
      { offset: 20 * MiB - 8192, length: 2 * MiB },
      { offset: 40 * MiB, length: 12345 },
    ];
    const disk = diskLike(
      size,
      data.map((r) => [r.offset, r.length]),
    );
    const asked: ByteRange[] = [];
    const sink = memorySink();
    let progress = 0;
    const result = await chunkImageFile(
      skippingHoles(reader(disk, MiB, asked), data, size),
      size,
      data,
      { sink, onBytes: (n) => (progress += n) },
    );
    expect(result.content).toEqual(expectedContent(disk));
    expect(progress).toBe(size);
    // Every request lies inside the data, except the one at the end that finds nothing more.
    const past = asked.filter((r) => r.offset >= size);
    expect(past.every((r) => r.length === 0)).toBe(true);
    for (const r of asked.filter((a) => a.offset < size)) {
      expect(
        data.some((d) => d.offset <= r.offset && r.offset + r.length <= d.offset + d.length),
      ).toBe(true);
    }
    expect(asked.reduce((n, r) => n + r.length, 0)).toBe(200 * KiB + 100 + 2 * MiB + 12345);
  });

  it('reads what a file gained past the size it had when its map was taken', async () => {
    const size = 2 * MiB;
    const grown = diskLike(5 * MiB + 7, [
      [MiB, 4096],
      [4 * MiB + 3, MiB + 4],
    ]);
    const result = await chunkImageFile(
      skippingHoles(reader(grown, MiB), [{ offset: MiB, length: 4096 }], size),
      size,
      [{ offset: MiB, length: 4096 }],
      { sink: memorySink(), onBytes: () => undefined },
    );
    expect(result.size).toBe(grown.length);
    expect(result.content).toEqual(expectedContent(grown));
  });

  it('stops when the signal is aborted', async () => {
    const controller = new AbortController();
    const disk = diskLike(32 * MiB, [[0, 32 * MiB]]);
    const sink = memorySink();
    const saving = chunkImageFile(reader(disk, MiB), disk.length, undefined, {
      sink: {
        save(type, data) {
          controller.abort(new Error('stop'));
          return sink.save(type, data);
        },
      },
      onBytes: () => undefined,
      signal: controller.signal,
    });
    await expect(saving).rejects.toThrow('stop');
  });
});

describe('which files are cut as disk images', () => {
  it('takes names of disk images and files with holes, nothing else', () => {
    const name = (s: string): Buffer => Buffer.from(s);
    for (const image of [
      'vm.img',
      'a/b/DISK.RAW',
      'x.qcow2',
      'x.qcow',
      'w.vmdk',
      'v.vdi',
      'h.vhd',
      'h.VHDX',
    ])
      expect(cutsAsDiskImage(name(image), MiB, undefined), image).toBe(true);
    // A name that is not UTF-8 still shows its suffix.
    expect(
      cutsAsDiskImage(Buffer.concat([Buffer.from([0xff, 0xfe]), name('.img')]), MiB, undefined),
    ).toBe(true);
    for (const other of ['dump.tar', 'img', 'notes.img.txt', 'x.qcow3', 'log'])
      expect(cutsAsDiskImage(name(other), MiB, undefined), other).toBe(false);
    // Holes in the map: a sparse file, whatever its name; a map covering everything is not.
    expect(cutsAsDiskImage(name('data.bin'), 4 * MiB, [{ offset: 0, length: MiB }])).toBe(true);
    expect(cutsAsDiskImage(name('data.bin'), 4 * MiB, [{ offset: 0, length: 4 * MiB }])).toBe(
      false,
    );
  });
});

describe('backing up files by content or in blocks', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'holdfast-image-file-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const chunker = new FastCdcChunker(
    { minSize: 16 * KiB, avgSize: 64 * KiB, maxSize: 256 * KiB },
    Buffer.alloc(32, 7),
  );
  async function backUp(path: string, size: number) {
    const sink = memorySink();
    const result = await saveFileContent(
      Buffer.from(path),
      size,
      chunker,
      256 * KiB,
      sink,
      () => undefined,
    );
    const lengths = result.content.map((p) =>
      typeof p === 'number' ? p : sink.chunks.get(p)!.length,
    );
    return { ...result, lengths };
  }

  it('cuts a sparse file in blocks and an ordinary one by content', async () => {
    const bytes = noise(3 * MiB, 3);
    const plain = join(dir, 'plain.bin');
    await writeFile(plain, bytes);
    const byContent = await backUp(plain, bytes.length);
    // Content-defined cuts: lengths vary, none of them a whole block.
    expect(byContent.lengths.every((l) => l <= 256 * KiB)).toBe(true);
    expect(byContent.lengths.length).toBeGreaterThan((3 * MiB) / (256 * KiB));

    const sparse = join(dir, 'sparse.bin');
    const handle = await open(sparse, 'w');
    // Holes enough to be worth asking the file system for (32 MiB and more).
    await handle.truncate(48 * MiB);
    await handle.write(bytes, 0, bytes.length, 8 * MiB);
    await handle.close();
    const inBlocks = await backUp(sparse, 48 * MiB);
    expect(inBlocks.lengths).toEqual([8 * MiB, ...Array(6).fill(IMAGE_BLOCK), 37 * MiB]);

    // An image's name is enough, holes or not.
    const named = join(dir, 'plain.img');
    await writeFile(named, bytes);
    expect((await backUp(named, bytes.length)).lengths).toEqual(Array(6).fill(IMAGE_BLOCK));
  });

  it('stores one block again after a write into a disk image, and restores it sparse', async () => {
    const src = join(dir, 'src');
    await mkdir(src);
    const image = join(src, 'vm.img');
    const handle = await open(image, 'w');
    await handle.truncate(64 * MiB);
    await handle.write(noise(6 * MiB, 11), 0, 6 * MiB, 20 * MiB + 4096);
    await handle.close();
    const backend = new MemoryBackend();
    const vault = await makeTestVault(backend);
    const first = await backupPaths(vault, [src]);
    expect(first.stats.newBytes).toBeGreaterThan(6 * MiB);
    expect(first.stats.newBytes).toBeLessThan(6 * MiB + 2 * IMAGE_BLOCK);

    // 4 KiB rewritten in place: content-defined chunks of 16 KiB would also find it, but the
    // block rule stores exactly the one 512 KiB block around it (compressed, random: whole).
    const writer = await open(image, 'r+');
    await writer.write(noise(4096, 12), 0, 4096, 23 * MiB + 100_000);
    await writer.close();
    const second = await backupPaths(vault, [src], { parent: first });
    expect(second.stats.filesRead).toBe(1);
    // The block, and the few hundred bytes of the new directory trees above it.
    expect(second.stats.newBytes).toBeGreaterThanOrEqual(IMAGE_BLOCK);
    expect(second.stats.newBytes).toBeLessThan(IMAGE_BLOCK + 8 * KiB);

    const target = join(dir, 'restored');
    await new Restorer(await reopenTestVault(backend), second, { target }).run();
    const restored = join(target, src.slice(1), 'vm.img');
    expect((await readFile(restored)).equals(await readFile(image))).toBe(true);
    // Restored sparse: about the 6 MiB of data allocated, not 64 MiB.
    expect((await stat(restored)).blocks * 512).toBeLessThan(8 * MiB);
  });
});
