import { existsSync } from 'node:fs';
import { createHash, createHmac } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createRangeHasher } from './range-hashes.js';

// The compiled worker (`npm test` builds it before running the tests).
const WORKER = new URL('../../dist/engine/range-hash-worker.js', import.meta.url);
const KEY = Buffer.alloc(32, 7);

function reads(): Buffer[] {
  return Array.from({ length: 8 }, (_, i) => {
    const data = Buffer.alloc(300_000 + i * 1000, i);
    data.writeUInt32LE(i * 12345, 1000);
    return data;
  });
}

const RANGES = [
  { offset: 0, length: 65536 },
  { offset: 65536, length: 1 },
  { offset: 100_000, length: 200_000 },
];

describe.each([
  ['on the calling thread', 1],
  ['on worker threads', 1 << 30],
])('range hashes %s', (_how, bytes) => {
  it('hashes each range (SHA-256, or HMAC under a key) and hands the same bytes back', async () => {
    if (bytes > 1)
      expect(
        existsSync(fileURLToPath(WORKER)),
        'the compiled range-hash worker is missing: run `npm run build` (npm test does)',
      ).toBe(true);
    for (const key of [undefined, KEY]) {
      const hasher = createRangeHasher({ bytes, ...(key ? { key } : {}), script: WORKER });
      try {
        expect(hasher.constructor.name).toBe(bytes > 1 ? 'WorkerRangeHasher' : 'InlineRangeHasher');
        const inputs = reads();
        const copies = inputs.map((r) => Buffer.from(r));
        // A view into a larger buffer cannot be transferred; it is copied instead.
        const view = Buffer.alloc(400_000, 9).subarray(100, 300_100);
        const results = await Promise.all([...inputs, view].map((r) => hasher.hash(r, RANGES)));
        for (const [i, original] of [...copies, Buffer.alloc(300_000, 9)].entries()) {
          expect(results[i]!.data.equals(original)).toBe(true);
          RANGES.forEach((r, n) => {
            const piece = original.subarray(r.offset, r.offset + r.length);
            const expected = (key ? createHmac('sha256', key) : createHash('sha256'))
              .update(piece)
              .digest();
            expect(Buffer.from(results[i]!.hashes.subarray(n * 32, (n + 1) * 32))).toEqual(
              expected,
            );
          });
        }
        expect(view.length).toBe(300_000);
      } finally {
        await hasher.close();
      }
    }
  });
});
