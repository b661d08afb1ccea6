import { describe, expect, it } from 'vitest';
import { MemoryBackend } from '../backends/index.js';
import { InlineBlobSealer } from './blob-sealer.js';
import { BlobReader } from './blob-reader.js';
import { BlobWriter } from './blob-writer.js';
import { makeTestVault, randomBytesSeeded, reopenTestVault } from './engine.testkit.js';
import { releaseBuffer } from './release-buffer.js';

describe('blob writer', () => {
  it('never looks at a blob after save resolves: callers may free it at once', async () => {
    const backend = new MemoryBackend();
    const vault = await makeTestVault(backend);
    // A small in-flight limit, so that a writer that lost count of freed bytes would stall.
    const writer = new BlobWriter(vault, {
      sealer: new InlineBlobSealer(vault.keys.encryption, { level: 3 }),
      maxInFlightBytes: 600_000,
    });
    const expected = new Map<string, Buffer>();
    for (let i = 0; i < 12; i += 1) {
      const window = Buffer.allocUnsafeSlow(200_000);
      randomBytesSeeded(200_000, 100 + i).copy(window);
      const { id } = await writer.save('data', window);
      expected.set(id, Buffer.from(randomBytesSeeded(200_000, 100 + i)));
      releaseBuffer(window);
      expect(window.byteLength).toBe(0);
    }
    await writer.flush();
    const reader = new BlobReader(await reopenTestVault(backend));
    for (const [id, bytes] of expected)
      expect((await reader.load(id, 'data')).equals(bytes)).toBe(true);
  });
});
