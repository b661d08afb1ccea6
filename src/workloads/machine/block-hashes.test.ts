import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { hashBlock } from './block-map.js';
import { createBlockHasher, hashBlocks, zeroBlockHash } from './block-hashes.js';

// The compiled worker (`npm test` builds it before running the tests).
const WORKER = new URL('../../../dist/workloads/machine/block-hash-worker.js', import.meta.url);

function sample(): Buffer {
  const data = Buffer.alloc(5 * 1000 + 123);
  for (let i = 0; i < 3000; i++) data[i] = (i * 7919) & 0xff;
  data[4500] = 1;
  return data;
}

describe('block hashes', () => {
  it('hashes each block, the short last one too, and knows zero blocks by their hash', () => {
    const data = sample();
    const hashes = hashBlocks(data, 1000);
    expect(hashes.length).toBe(6 * 32);
    for (let i = 0; i < 6; i++) {
      const block = data.subarray(i * 1000, (i + 1) * 1000);
      expect(Buffer.from(hashes.subarray(i * 32, (i + 1) * 32))).toEqual(hashBlock(block));
    }
    expect(zeroBlockHash(1000)).toEqual(hashBlock(Buffer.alloc(1000)));
  });

  it('gives the same hashes and the same bytes back on worker threads, reads in any order', async () => {
    expect(
      existsSync(fileURLToPath(WORKER)),
      'the compiled block-hash worker is missing: run `npm run build` (npm test does)',
    ).toBe(true);
    const hasher = createBlockHasher(1 << 30, WORKER);
    try {
      expect(hasher.constructor.name).toBe('WorkerBlockHasher');
      const reads = Array.from({ length: 8 }, (_, i) => {
        const data = Buffer.alloc(300_000 + i * 1000, i);
        data.writeUInt32LE(i * 12345, 1000);
        return data;
      });
      const expected = reads.map((r) => ({ copy: Buffer.from(r), hashes: hashBlocks(r, 65536) }));
      // A view into a larger buffer cannot be transferred; it is copied instead.
      const view = Buffer.alloc(200_000, 9).subarray(100, 150_100);
      const results = await Promise.all([
        ...reads.map((r) => hasher.hash(r, 65536)),
        hasher.hash(view, 65536),
      ]);
      for (const [i, e] of expected.entries()) {
        expect(results[i]!.data.equals(e.copy)).toBe(true);
        expect(Buffer.from(results[i]!.hashes).equals(Buffer.from(e.hashes))).toBe(true);
      }
      expect(results[8]!.data.equals(Buffer.alloc(150_000, 9))).toBe(true);
      expect(view.length).toBe(150_000);
    } finally {
      await hasher.close();
    }
  });

  it('hashes on the calling thread when there is little to hash', () => {
    expect(createBlockHasher(1 << 20, WORKER).constructor.name).toBe('InlineBlockHasher');
  });
});
