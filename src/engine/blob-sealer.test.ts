import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { unsealBlob } from './blob-codec.js';
import { postableParts, SpareBuffers, WorkerBlobSealer } from './blob-sealer.js';

// The threads run the compiled worker script: `npm test` builds it first (`tsc -b`).
const SCRIPT = new URL('../../dist/engine/blob-seal-worker.js', import.meta.url);
const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

describe('sealing threads', () => {
  let sealer: WorkerBlobSealer | undefined;
  afterEach(async () => {
    await sealer?.close();
    sealer = undefined;
  });

  function start(key = randomBytes(32)): WorkerBlobSealer {
    if (!existsSync(fileURLToPath(SCRIPT)))
      throw new Error(`${fileURLToPath(SCRIPT)} is missing: run \`npm run build\` first.`);
    sealer = new WorkerBlobSealer(key, { level: 3 }, 2, SCRIPT);
    return sealer;
  }

  it('seal blobs that open again with the key', async () => {
    const key = randomBytes(32);
    const s = start(key);
    const blobs = [Buffer.alloc(300_000, 'text '), randomBytes(200_000), Buffer.from('tiny')];
    // Each blob comes back as the pieces to append to a pack, which together are the blob.
    const sealed = (await Promise.all(blobs.map((b) => s.seal('data', sha256(b), b)))).map((p) =>
      Buffer.concat(p),
    );
    sealed.forEach((s, i) => {
      expect(unsealBlob(key, 'data', sha256(blobs[i]!), s).equals(blobs[i]!)).toBe(true);
    });
    // Compressible text was compressed, random bytes were not.
    expect(sealed[0]!.byteLength).toBeLessThan(10_000);
    expect(sealed[1]!.byteLength).toBeGreaterThan(200_000);
  });

  it('hash packs on a thread, handing the whole buffer back, and match each answer to its pack', async () => {
    const s = start();
    const packs = Array.from({ length: 6 }, (_, i) => {
      const whole = Buffer.from(randomBytes(3 * 1024 * 1024 + i));
      // A pack is a view of a larger buffer: the bytes collected so far.
      return { whole: whole.byteLength, bytes: whole.subarray(0, 2 * 1024 * 1024 + i) };
    });
    const expected = packs.map((p) => ({ digest: sha256(p.bytes), copy: Buffer.from(p.bytes) }));
    const results = await Promise.all(packs.map((p) => s.digest(p.bytes)));
    results.forEach((r, i) => {
      expect(r.digest).toBe(expected[i]!.digest);
      expect(r.bytes.equals(expected[i]!.copy)).toBe(true);
      expect(r.bytes.byteOffset).toBe(0);
      expect(r.bytes.buffer.byteLength).toBe(packs[i]!.whole);
      // The buffer moved to the thread and back: the view handed over is empty now.
      expect(packs[i]!.bytes.byteLength).toBe(0);
    });
  });

  it('hash small buffers where they are, never moving a shared pool', async () => {
    const s = start();
    const small = Buffer.from('a small pack header');
    const result = await s.digest(small);
    expect(result.digest).toBe(sha256(Buffer.from('a small pack header')));
    expect(result.bytes).toBe(small);
    expect(small.byteLength).toBe(19);
  });

  it('fail what is still pending when the threads stop, instead of leaving it waiting', async () => {
    const s = start();
    const pending = [
      s.digest(Buffer.from(randomBytes(8 * 1024 * 1024))),
      s.seal('data', '00'.repeat(32), randomBytes(4 * 1024 * 1024)),
    ];
    // Watched before the stop: a rejection that lands while close() runs is then handled.
    const settling = Promise.allSettled(pending);
    await s.close();
    sealer = undefined;
    // Each settles: answered before the stop, or failed by it; none hangs the test.
    const settled = await settling;
    for (const result of settled)
      if (result.status === 'rejected')
        expect(String(result.reason)).toMatch(/sealing thread stopped/);
  });
});

describe('pieces of a sealed blob posted by a sealing thread', () => {
  it('move large buffers of their own, and join small pieces into copies in order', () => {
    const nonce = Buffer.from('nonce-twelve');
    const body = Buffer.from(Buffer.allocUnsafeSlow(200_000).fill(7));
    const tag = Buffer.from('sixteen-byte-tag');
    const { parts, transfer } = postableParts([nonce, Buffer.of(1), body, tag]);
    expect(parts.map((p) => p.byteLength)).toEqual([13, 200_000, 16]);
    expect(parts[1]).toBe(body);
    expect(transfer).toEqual([body.buffer]);
    expect(Buffer.concat(parts).equals(Buffer.concat([nonce, Buffer.of(1), body, tag]))).toBe(true);
    // A large view of a larger buffer is copied, never moved with the rest of its buffer.
    const view = Buffer.allocUnsafeSlow(1_000_000).subarray(0, 100_000);
    const copied = postableParts([view]);
    expect(copied.transfer).toEqual([]);
    expect(copied.parts[0]!.buffer).not.toBe(view.buffer);
  });
});

describe('spare buffers for plaintext on its way to a sealing thread', () => {
  it('reuse a returned buffer that fits, and never one more than twice too large', () => {
    const spares = new SpareBuffers(1024 * 1024);
    const first = spares.take(300_000);
    expect(first.byteLength).toBe(300_000);
    spares.give(first.buffer as ArrayBuffer);
    expect(spares.take(200_000).buffer).toBe(first.buffer);
    spares.give(first.buffer as ArrayBuffer);
    // Too small for 400 KB, too large for 100 KB: a buffer of its own each time.
    expect(spares.take(400_000).buffer).not.toBe(first.buffer);
    expect(spares.take(100_000).buffer).not.toBe(first.buffer);
    expect(spares.take(300_000).buffer).toBe(first.buffer);
  });

  it('keep no more idle bytes than the bound, letting the oldest go', () => {
    const spares = new SpareBuffers(500_000);
    const a = spares.take(300_000).buffer as ArrayBuffer;
    const b = spares.take(300_000).buffer as ArrayBuffer;
    spares.give(a);
    spares.give(b);
    expect(a.byteLength).toBe(0);
    expect(spares.take(300_000).buffer).toBe(b);
  });

  it('keep no small buffers, which the allocator reuses cheaply anyway', () => {
    const spares = new SpareBuffers(500_000);
    const small = spares.take(1000).buffer as ArrayBuffer;
    spares.give(small);
    expect(spares.take(1000).buffer).not.toBe(small);
  });
});
