import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  chunkLengths,
  DEFAULT_CHUNKER_PARAMS,
  FastCdcChunker,
  type Chunker,
  type ChunkerParams,
} from './chunker.js';
import { deriveGearTable, spreadMask } from './gear-table.js';

const SMALL: ChunkerParams = { minSize: 2 * 1024, avgSize: 8 * 1024, maxSize: 64 * 1024 };
const TINY: ChunkerParams = { minSize: 64, avgSize: 256, maxSize: 1024 };
const MiB = 1024 * 1024;

/** mulberry32: tiny seeded PRNG, so every failure reproduces. */
function prng(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
}

function randomBytes(seed: number, length: number): Uint8Array {
  const next = prng(seed);
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = next() & 0xff;
  return bytes;
}

const SEED_A = randomBytes(1, 32);
const SEED_B = randomBytes(2, 32);

/** Cut offsets (chunk ends) of a list of chunk lengths. */
function cutOffsets(lengths: readonly number[]): number[] {
  let offset = 0;
  return lengths.map((length) => (offset += length));
}

/**
 * A streaming caller: reads `data` in pieces of `readSizes` (cycled) and asks for cuts. When the
 * chunker wants more data it either appends in place (same start, larger end) or, every other
 * time, moves the unconsumed tail to a new buffer behind junk bytes at another alignment, so
 * chunk bytes sit at different offsets than in the whole-buffer run.
 */
function streamingLengths(chunker: Chunker, data: Uint8Array, readSizes: number[]): number[] {
  const lengths: number[] = [];
  let buf = new Uint8Array(0);
  let start = 0;
  let end = 0;
  let read = 0;
  let refills = 0;
  for (;;) {
    const final = read === data.length;
    const length = chunker.nextCut(buf, start, end, final);
    if (length > 0) {
      lengths.push(length);
      start += length;
      continue;
    }
    if (length === 0 || final) return lengths; // final with a -1 would be a bug: caught by sum checks
    const size = Math.min(readSizes[refills % readSizes.length]!, data.length - read);
    refills += 1;
    if (refills % 2 === 1 && end + size <= buf.length) {
      buf.set(data.subarray(read, read + size), end);
    } else {
      const junk = refills % 7;
      const next = new Uint8Array(junk + (end - start) + size + 2 * size).fill(0xa5);
      next.set(buf.subarray(start, end), junk);
      next.set(data.subarray(read, read + size), junk + end - start);
      [buf, end, start] = [next, junk + end - start, junk];
    }
    end += size;
    read += size;
  }
}

/** The specification, written plainly: full gear hash from the chunk start, no skipping. */
function referenceLengths(params: ChunkerParams, seed: Uint8Array, data: Uint8Array): number[] {
  const gear = deriveGearTable(seed);
  const bits = Math.log2(params.avgSize);
  const [strict, loose] = [spreadMask(bits + 2) >>> 0, spreadMask(bits - 2) >>> 0];
  const lengths: number[] = [];
  for (let start = 0; start < data.length;) {
    let length = Math.min(params.maxSize, data.length - start);
    let h = 0;
    for (let k = 0; k < length; k++) {
      h = ((h << 1) + (gear[data[start + k]!]! >>> 0)) >>> 0;
      const mask = k + 1 < params.avgSize ? strict : loose;
      if (k + 1 >= params.minSize && (h & mask) >>> 0 === 0) {
        length = k + 1;
        break;
      }
    }
    lengths.push(length);
    start += length;
  }
  return lengths;
}

function expectWellFormed(lengths: number[], params: ChunkerParams, total: number): void {
  expect(lengths.reduce((sum, length) => sum + length, 0)).toBe(total);
  lengths.slice(0, -1).forEach((length) => {
    expect(length).toBeGreaterThanOrEqual(params.minSize);
    expect(length).toBeLessThanOrEqual(params.maxSize);
  });
  if (lengths.length > 0) expect(lengths.at(-1)).toBeGreaterThan(0);
  if (lengths.length > 0) expect(lengths.at(-1)).toBeLessThanOrEqual(params.maxSize);
}

describe('FastCdcChunker', () => {
  const small = new FastCdcChunker(SMALL, SEED_A);
  const data = randomBytes(3, 4 * MiB);

  it('cuts chunks within [min, max] that add up to the input', () => {
    const lengths = chunkLengths(small, data);
    expectWellFormed(lengths, SMALL, data.length);
    expect(lengths.length).toBeGreaterThan(100);
  });

  it('matches the plain reference algorithm, on random and on low-entropy data', () => {
    const text = new TextEncoder().encode(
      'the quick brown fox jumps over the lazy dog. '.repeat(40_000),
    );
    for (const input of [data.subarray(0, MiB), text]) {
      expect(chunkLengths(small, input)).toEqual(referenceLengths(SMALL, SEED_A, input));
    }
  });

  it('cuts the same whether data comes whole or in pieces of any size and alignment', () => {
    const whole = chunkLengths(small, data);
    for (const reads of [[1000], [65_536], [1, 7, 3000, 100_000], [SMALL.maxSize * 3 + 5]]) {
      expect(streamingLengths(small, data, reads)).toEqual(whole);
    }
  });

  it('cuts by the seed: same seed same cuts, other seed other cuts', () => {
    const cuts = cutOffsets(chunkLengths(small, data));
    expect(cutOffsets(chunkLengths(new FastCdcChunker(SMALL, SEED_A.slice()), data))).toEqual(cuts);
    const other = new Set(cutOffsets(chunkLengths(new FastCdcChunker(SMALL, SEED_B), data)));
    const shared = cuts.filter((cut) => other.has(cut)).length;
    expect(shared / cuts.length).toBeLessThan(0.05);
  });

  it('is content-defined: an insertion near the start leaves later cuts in place', () => {
    const original = randomBytes(4, 20 * MiB);
    const inserted = new Uint8Array(original.length + 5);
    inserted.set(original.subarray(0, 100_000));
    inserted.set([1, 2, 3, 4, 5], 100_000);
    inserted.set(original.subarray(100_000), 100_005);
    for (const params of [SMALL, DEFAULT_CHUNKER_PARAMS]) {
      const chunker = new FastCdcChunker(params, SEED_A);
      const before = cutOffsets(chunkLengths(chunker, original)).filter((cut) => cut > 100_000);
      const after = new Set(cutOffsets(chunkLengths(chunker, inserted)).map((cut) => cut - 5));
      const lost = before.filter((cut) => !after.has(cut)).length;
      expect(before.length).toBeGreaterThan(10);
      expect(lost).toBeLessThanOrEqual(2);
    }
  });

  it('averages near avgSize on random data, for small and default params', () => {
    const cases: [ChunkerParams, Uint8Array][] = [
      [SMALL, data],
      [DEFAULT_CHUNKER_PARAMS, randomBytes(5, 64 * MiB)],
    ];
    for (const [params, input] of cases) {
      const lengths = chunkLengths(new FastCdcChunker(params, SEED_A), input);
      const mean = input.length / lengths.length;
      expect(mean).toBeGreaterThan(0.6 * params.avgSize);
      expect(mean).toBeLessThan(1.6 * params.avgSize);
    }
  });

  it('forces a cut at maxSize when the content offers none', () => {
    const probe = (byte: number): number =>
      small.nextCut(new Uint8Array(SMALL.maxSize).fill(byte), 0, SMALL.maxSize, false);
    const byte = Array.from({ length: 256 }, (_, b) => b).find((b) => probe(b) === SMALL.maxSize);
    expect(byte).toBeDefined();
    const flat = new Uint8Array(3 * SMALL.maxSize + 100).fill(byte!);
    expect(chunkLengths(small, flat)).toEqual([SMALL.maxSize, SMALL.maxSize, SMALL.maxSize, 100]);
    expect(small.nextCut(flat, 0, SMALL.maxSize - 1, false)).toBe(-1);
  });

  it('handles short and empty input as the contract says', () => {
    expect(chunkLengths(small, new Uint8Array(0))).toEqual([]);
    expect(small.nextCut(data, 10, 10, true)).toBe(0);
    expect(small.nextCut(data, 10, 10, false)).toBe(-1);
    expect(small.nextCut(data, 10, 10 + SMALL.minSize - 1, false)).toBe(-1);
    expect(small.nextCut(data, 10, 10 + SMALL.minSize - 1, true)).toBe(SMALL.minSize - 1);
  });

  it('keeps its boundaries stable across versions (dedup depends on it)', () => {
    // Table words checked against an independent SHA-256 of domain || seed || uint32be(block).
    const gear = deriveGearTable(SEED_A);
    expect([gear[0]! >>> 0, gear[255]! >>> 0]).toEqual([0x0178604a, 0x63709e87]);
    expect(chunkLengths(small, data.subarray(0, 80_000))).toEqual([
      12156, 9976, 9855, 9998, 8336, 10759, 15525, 3395,
    ]);
  });

  it.each<[string, ChunkerParams]>([
    ['a fractional size', { minSize: 2048.5, avgSize: 8192, maxSize: 65536 }],
    ['NaN', { minSize: Number.NaN, avgSize: 8192, maxSize: 65536 }],
    ['minSize below 64', { minSize: 32, avgSize: 8192, maxSize: 65536 }],
    ['minSize >= avgSize', { minSize: 8192, avgSize: 8192, maxSize: 65536 }],
    ['avgSize >= maxSize', { minSize: 2048, avgSize: 8192, maxSize: 8192 }],
    ['avgSize not a power of two', { minSize: 2048, avgSize: 8000, maxSize: 65536 }],
    ['maxSize above 1 GiB', { minSize: 2048, avgSize: 8192, maxSize: 2 ** 31 }],
  ])('rejects params with %s', (_, params) => {
    expect(() => new FastCdcChunker(params, SEED_A)).toThrow(RangeError);
  });

  it('rejects a seed of the wrong length and ranges outside the data', () => {
    expect(() => new FastCdcChunker(SMALL, new Uint8Array(16))).toThrow(RangeError);
    for (const [start, end] of [
      [-1, 10],
      [10, 5],
      [0, data.length + 1],
      [0.5, 10],
    ] as const) {
      expect(() => small.nextCut(data, start, end, false)).toThrow(RangeError);
    }
  });
});

describe('FastCdcChunker properties', () => {
  const tiny = new FastCdcChunker(TINY, SEED_A);
  // Random bytes cut by content; long runs of one byte force maxSize cuts.
  const bytes = fc.oneof(
    fc.uint8Array({ maxLength: 6000 }),
    fc
      .array(fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 1, max: 1500 })), {
        maxLength: 8,
      })
      .map((runs) => Uint8Array.from(runs.flatMap(([byte, run]) => Array<number>(run).fill(byte)))),
  );

  it('cuts well-formed chunks that depend only on their own bytes', () => {
    fc.assert(
      fc.property(bytes, (data) => {
        const lengths = chunkLengths(tiny, data);
        expectWellFormed(lengths, TINY, data.length);
        let start = 0;
        for (const length of lengths) {
          const own = data.slice(start, start + length);
          expect(tiny.nextCut(own, 0, length, true)).toBe(length);
          start += length;
        }
      }),
    );
  });

  it('cuts the same when streamed in arbitrary pieces', () => {
    const reads = fc.array(fc.integer({ min: 1, max: 3000 }), { minLength: 1, maxLength: 20 });
    fc.assert(
      fc.property(bytes, reads, (data, sizes) => {
        expect(streamingLengths(tiny, data, sizes)).toEqual(chunkLengths(tiny, data));
      }),
    );
  });

  it('cuts as the reference does, wherever the data sits in memory', () => {
    fc.assert(
      fc.property(bytes, fc.integer({ min: 0, max: 7 }), (data, offset) => {
        const placed = new Uint8Array(offset + data.length).fill(0x5a).subarray(offset);
        placed.set(data);
        expect(chunkLengths(tiny, placed)).toEqual(referenceLengths(TINY, SEED_A, data));
      }),
    );
  });
});
