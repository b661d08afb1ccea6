import { describe, expect, it } from 'vitest';
import { sealBlob } from './blob-codec.js';
import { openSpanInline } from './blob-opener.js';
import { PACK_READ_BYTES, packReads } from './blob-reader.js';
import { randomBytesSeeded } from './engine.testkit.js';
import type { BlobLocation } from './vault-index.js';

const MiB = 1024 * 1024;

function blob(id: string, offset: number, length: number, rawLength = length) {
  const location: BlobLocation = { pack: 'p', type: 'data', offset, length, rawLength };
  return { id, location };
}

describe('packReads', () => {
  it('splits a pack into reads of bounded span, in pack order, each blob once', () => {
    const blobs = [
      blob('c', 3 * MiB, MiB),
      blob('a', 0, MiB),
      blob('e', 8.5 * MiB, MiB),
      blob('b', MiB, MiB),
      blob('d', 5 * MiB, MiB),
    ];
    const runs = packReads(blobs);
    expect(runs.map((run) => run.map((b) => b.id))).toEqual([['a', 'b', 'c'], ['d'], ['e']]);
    for (const run of runs) {
      const first = run[0]!.location;
      const last = run[run.length - 1]!.location;
      expect(last.offset + last.length - first.offset).toBeLessThanOrEqual(PACK_READ_BYTES);
    }
  });

  it('bounds the plaintext of one read, so compressible data does not multiply memory', () => {
    const blobs = Array.from({ length: 8 }, (_, i) => blob(`${i}`, i * 1000, 1000, MiB));
    expect(packReads(blobs).map((run) => run.length)).toEqual([4, 4]);
  });

  it('reads a blob larger than the bound on its own', () => {
    const runs = packReads([
      blob('a', 0, 100),
      blob('big', 100, 6 * MiB),
      blob('z', 6 * MiB + 100, 9),
    ]);
    expect(runs.map((run) => run.map((b) => b.id))).toEqual([['a'], ['big'], ['z']]);
  });
});

describe('openSpanInline', () => {
  it('rejects a blob whose plaintext length differs from the index', () => {
    const key = randomBytesSeeded(32, 1);
    const data = randomBytesSeeded(5000, 2);
    const id = 'ab'.repeat(32);
    const sealed = sealBlob(key, 'data', id, data, { level: 3 });
    const span = { id, type: 'data' as const, offset: 0, length: sealed.byteLength };
    const [good] = openSpanInline(key, sealed, [{ ...span, rawLength: 5000 }]);
    expect(good && 'data' in good && good.data.equals(data)).toBe(true);
    const [bad] = openSpanInline(key, sealed, [{ ...span, rawLength: 4999 }]);
    expect(bad && 'error' in bad && bad.error.code).toBe('VAULT_INTEGRITY');
  });
});
