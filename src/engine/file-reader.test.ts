import { createHash, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { memoryChunkSink as memorySink } from './engine.testkit.js';
import { FastCdcChunker, type ChunkerParams } from './chunker.js';
import { chunkFile, chunkFileAhead, type ChunkSink, type ReadAt } from './file-reader.js';
import type { ContentPiece } from './tree.js';
import { MIN_ZERO_RUN, ZERO_BLOCK } from './zero-runs.js';

const SMALL: ChunkerParams = { minSize: 2 * 1024, avgSize: 8 * 1024, maxSize: 64 * 1024 };
const chunker = new FastCdcChunker(SMALL, Buffer.alloc(32, 7));

function job(sink: ChunkSink) {
  return { chunker, maxChunk: SMALL.maxSize, sink, onBytes: () => undefined };
}

/** A reader over `data` that returns at most the next of `sizes` (cycled) per call. */
function shortReads(data: Buffer, sizes: number[]): ReadAt {
  let call = 0;
  return (buffer, offset, length, position) => {
    const size = sizes[call++ % sizes.length]!;
    const n = Math.max(0, Math.min(length, size, data.byteLength - position));
    data.copy(buffer, offset, position, position + n);
    return n;
  };
}

/**
 * Chunks `data` read in pieces of `sizes`. A smaller `statSize` than the data makes the read
 * window start small and widen as the file turns out longer, which moves window boundaries.
 */
async function chunk(data: Buffer, sizes = [1 << 30], statSize = data.byteLength) {
  const sink = memorySink();
  const result = await chunkFile(shortReads(data, sizes), statSize, job(sink));
  return { ...result, sink };
}

/** The same through the large-file path: two buffers, a read in flight while chunking. */
async function chunkAhead(data: Buffer, sizes: number[]) {
  const sink = memorySink();
  const read = shortReads(data, sizes);
  const result = await chunkFileAhead(
    // Asynchronous, as file handle reads are.
    (...args) =>
      new Promise<number>((resolve) => setImmediate(() => resolve(read(...args) as number))),
    job(sink),
  );
  return { ...result, sink };
}

function reassemble(content: ContentPiece[], chunks: Map<string, Buffer>): Buffer {
  return Buffer.concat(
    content.map((p) => (typeof p === 'number' ? Buffer.alloc(p) : chunks.get(p)!)),
  );
}

/** Offsets and lengths of the holes in a content list. */
function holes(content: ContentPiece[], chunks: Map<string, Buffer>): Array<[number, number]> {
  const found: Array<[number, number]> = [];
  let offset = 0;
  for (const p of content) {
    const length = typeof p === 'number' ? p : chunks.get(p)!.byteLength;
    if (typeof p === 'number') found.push([offset, length]);
    offset += length;
  }
  return found;
}

/** A file of data and zero stretches: `[kind, length]` pieces in order. */
function build(pieces: Array<['data' | 'zero', number]>): Buffer {
  return Buffer.concat(
    pieces.map(([kind, length]) => (kind === 'zero' ? Buffer.alloc(length) : randomBytes(length))),
  );
}

describe('zero runs in files', () => {
  it('records an aligned zero run of 64 KiB or more as a hole and stores no zeros', async () => {
    const data = build([
      ['data', 100 * 1024],
      ['zero', 1024 * 1024],
      ['data', 50 * 1024],
      ['zero', 8 * 1024],
      ['data', 30 * 1024],
    ]);
    const { content, sink, size } = await chunk(data);
    expect(size).toBe(data.byteLength);
    expect(reassemble(content, sink.chunks).equals(data)).toBe(true);
    expect(holes(content, sink.chunks)).toEqual([[100 * 1024, 1024 * 1024]]);
    const stored = [...sink.chunks.values()].reduce((n, c) => n + c.byteLength, 0);
    expect(stored).toBe(data.byteLength - 1024 * 1024);
  });

  it('keeps unaligned zero bytes at the edges of a run inside the neighbouring chunks', async () => {
    // The run starts 100 bytes into a block and ends 100 bytes after one: the run found is
    // the whole, aligned blocks; the zero bytes before and after it stay in data chunks.
    const runStart = 8192 + 100;
    const runEnd = runStart + 200 * 1024;
    const data = build([
      ['data', runStart],
      ['zero', runEnd - runStart],
      ['data', 5000],
    ]);
    const { content, sink } = await chunk(data);
    // Reassembly also proves that no hole covers a non-zero byte.
    expect(reassemble(content, sink.chunks).equals(data)).toBe(true);
    const found = holes(content, sink.chunks);
    expect(found).toHaveLength(1);
    const [start, length] = found[0]!;
    expect(start + length).toBe(Math.floor(runEnd / ZERO_BLOCK) * ZERO_BLOCK);
    if (start === 3 * ZERO_BLOCK) return;
    // Otherwise the chunker happened to cut inside the leading zero bytes (about one file in
    // 150): the chunk from that cut to the run is all zeros, which is recorded as a hole too and
    // joins the run. It still never reaches into data.
    expect(start).toBeGreaterThanOrEqual(runStart);
    expect(start).toBeLessThan(3 * ZERO_BLOCK);
    const stored = [...sink.chunks.values()];
    expect(stored.every((c) => c.some((byte) => byte !== 0))).toBe(true);
  });

  it('cuts the same chunks and holes however the file arrives', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.tuple(
            fc.constantFrom<'data' | 'zero'>('data', 'zero'),
            fc.integer({ min: 1, max: 300 * 1024 }),
          ),
          { minLength: 1, maxLength: 8 },
        ),
        fc.array(fc.integer({ min: 1, max: 200 * 1024 }), { minLength: 1, maxLength: 5 }),
        fc.integer({ min: 1, max: 400 * 1024 }),
        async (pieces, reads, statSize) => {
          const data = build(pieces);
          const whole = await chunk(data);
          const pieced = await chunk(data, reads, Math.min(statSize, data.byteLength));
          expect(pieced.content).toEqual(whole.content);
          const ahead = await chunkAhead(data, reads);
          expect(ahead.content).toEqual(whole.content);
          expect(ahead.size).toBe(data.byteLength);
          expect(reassemble(whole.content, whole.sink.chunks).equals(data)).toBe(true);
          for (const [, length] of holes(whole.content, whole.sink.chunks)) {
            // A hole is a zero run, or a chunk that happened to be all zeros at the end.
            expect(length >= MIN_ZERO_RUN || length <= SMALL.maxSize).toBe(true);
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('finds every aligned zero run of 64 KiB or more', async () => {
    const data = build([
      ['data', 3 * 1024],
      ['zero', 64 * 1024 + 4096 * 2],
      ['data', 70 * 1024],
      ['zero', 2 * 1024 * 1024],
    ]);
    const { content, sink } = await chunk(data, [10_000, 77_777]);
    const found = holes(content, sink.chunks);
    expect(found).toHaveLength(2);
    expect(found[0]).toEqual([4096, 64 * 1024 + 4096]);
    expect(found[1]![0] + found[1]![1]).toBe(data.byteLength);
  });
});
