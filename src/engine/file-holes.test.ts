import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, rm, stat, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FastCdcChunker } from './chunker.js';
import { saveFileContent, skippingHoles, type ChunkSink, type ReadAt } from './file-reader.js';

const MiB = 1024 * 1024;

/** `rchar` of /proc/self/io: every byte this process's read calls returned. */
function bytesReadByThisProcess(): number {
  const io = readFileSync('/proc/self/io', 'utf8');
  return Number(/rchar: (\d+)/.exec(io)![1]);
}

/** The chunker of these tests: chunks of 64 KiB to 1 MiB, so a few MiB are cut many times. */
function smallChunker(): FastCdcChunker {
  return new FastCdcChunker(
    { minSize: 64 * 1024, avgSize: 256 * 1024, maxSize: MiB },
    Buffer.alloc(32, 7),
  );
}

/** A sink that keeps a copy of every chunk saved through it in `into`. */
function keep(into: Buffer[]): ChunkSink {
  return {
    save(_type, data) {
      into.push(Buffer.from(data));
      return Promise.resolve({ id: createHash('sha256').update(data).digest('hex') });
    },
  };
}

describe('reading around holes', () => {
  it('fills reads wholly inside holes with zeros, reads the rest, and always reads past the size', async () => {
    const calls: number[] = [];
    const read: ReadAt = (buffer, offset, length, position) => {
      calls.push(position);
      buffer.fill(7, offset, offset + length);
      return length;
    };
    const reader = skippingHoles(read, [{ offset: 10 * MiB, length: MiB }], 16 * MiB);
    const buffer = Buffer.alloc(4 * MiB, 9);
    expect(await reader(buffer, 0, 4 * MiB, 0)).toBe(4 * MiB);
    expect(buffer.every((b) => b === 0)).toBe(true);
    // Touches the data: only the data is read, the holes around it are zeros.
    expect(await reader(buffer, 0, 4 * MiB, 8 * MiB)).toBe(4 * MiB);
    expect(buffer.subarray(0, 2 * MiB).every((b) => b === 0)).toBe(true);
    expect(buffer.subarray(2 * MiB, 3 * MiB).every((b) => b === 7)).toBe(true);
    expect(buffer.subarray(3 * MiB).every((b) => b === 0)).toBe(true);
    expect(await reader(buffer, 0, 4 * MiB, 12 * MiB)).toBe(4 * MiB);
    expect(await reader(buffer, 0, 4 * MiB, 16 * MiB)).toBe(4 * MiB); // past the size
    expect(calls).toEqual([10 * MiB, 16 * MiB]);
    // A file that ends inside its data (it shrank): the read stops where the data ended.
    const ended = skippingHoles(() => 0, [{ offset: MiB, length: MiB }], 4 * MiB);
    expect(await ended(buffer, 0, 4 * MiB, 0)).toBe(MiB);
    // A read reaching past the size inside a hole stops at the size.
    const short = skippingHoles(read, [], 3 * MiB);
    expect(await short(buffer, 0, 4 * MiB, 2 * MiB)).toBe(MiB);
  });
});

describe('backing up a sparse file', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'holdfast-holes-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('cuts it exactly as a full read does, with its holes as holes', async () => {
    const path = join(dir, 'disk.img');
    const handle = await open(path, 'w');
    await handle.truncate(64 * MiB);
    for (const at of [3 * MiB + 12345, 40 * MiB])
      await handle.write(Buffer.alloc(200_000, at % 251), 0, 200_000, at);
    await handle.close();
    const chunker = smallChunker();
    const stored: Buffer[] = [];
    const sink = keep(stored);
    let bytes = 0;
    const readBefore = bytesReadByThisProcess();
    const viaHoles = await saveFileContent(
      Buffer.from(path),
      64 * MiB,
      chunker,
      MiB,
      sink,
      (n) => (bytes += n),
    );
    const pieces = viaHoles.content.filter((p) => typeof p === 'number');
    expect(pieces.reduce<number>((n, p) => n + (p as number), 0)).toBeGreaterThan(60 * MiB);
    expect(bytes).toBe(64 * MiB);
    // The holes were not asked of the file system: only the data (two 200 KB stretches, in
    // whole file-system blocks).
    expect(bytesReadByThisProcess() - readBefore).toBeLessThan(MiB);
    const storedBytes = stored.reduce((n, b) => n + b.length, 0);
    expect(storedBytes).toBeLessThan(2 * MiB);

    // The same bytes as an ordinary file without holes: the same cuts.
    const full = join(dir, 'full.img');
    const copy = Buffer.alloc(64 * MiB);
    const back = await open(path, 'r');
    await back.read(copy, 0, copy.length, 0);
    await back.close();
    await writeFile(full, copy);
    const fullStored: Buffer[] = [];
    const viaRead = await saveFileContent(
      Buffer.from(full),
      64 * MiB,
      chunker,
      MiB,
      keep(fullStored),
      () => undefined,
    );
    expect(viaRead.content).toEqual(viaHoles.content);
    expect(Buffer.concat(fullStored).equals(Buffer.concat(stored))).toBe(true);
  });

  it('reads a file with few holes whole and cuts it by content, as if it had none', async () => {
    // 8 MiB of data with a 1 MiB hole in the middle: not worth a child process to map.
    const sparse = join(dir, 'few-holes.bin');
    const bytes = randomBytes(8 * MiB).fill(0, 3 * MiB, 4 * MiB);
    const handle = await open(sparse, 'w');
    await handle.write(bytes, 0, 3 * MiB, 0);
    await handle.write(bytes, 4 * MiB, 4 * MiB, 4 * MiB);
    await handle.close();
    expect((await stat(sparse)).blocks * 512).toBeLessThan(8 * MiB);
    const dense = join(dir, 'no-holes.bin');
    await writeFile(dense, bytes);
    const chunker = smallChunker();
    const lengths = async (path: string): Promise<number[]> => {
      const stored: Buffer[] = [];
      await saveFileContent(Buffer.from(path), 8 * MiB, chunker, MiB, keep(stored), () => 0);
      return stored.map((b) => b.length);
    };
    const viaSparse = await lengths(sparse);
    expect(viaSparse).toEqual(await lengths(dense));
    // Cut by content: not the 512 KiB blocks a disk image (or a mapped sparse file) gets.
    expect(viaSparse.some((n) => n !== 512 * 1024)).toBe(true);
  });

  it('skips the holes of a file whose name is not UTF-8', async () => {
    // 0xff 0xfe are not UTF-8: the name cannot be handed to filefrag as a string argument.
    const path = Buffer.concat([
      Buffer.from(`${dir}/`),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('.bin'),
    ]);
    const handle = await open(path, 'w');
    await handle.truncate(64 * MiB);
    await handle.write(Buffer.alloc(200_000, 9), 0, 200_000, 30 * MiB);
    await handle.close();
    const chunker = smallChunker();
    const stored: Buffer[] = [];
    const readBefore = bytesReadByThisProcess();
    const result = await saveFileContent(
      path,
      64 * MiB,
      chunker,
      MiB,
      keep(stored),
      () => undefined,
    );
    expect(result.size).toBe(64 * MiB);
    expect(bytesReadByThisProcess() - readBefore).toBeLessThan(MiB);
    // Cut in blocks as a sparse file is: the data's 49 pages, holes around them.
    expect(stored.map((b) => b.length)).toEqual([49 * 4096]);
  });
});
