import { availableParallelism } from 'node:os';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { isAllZero } from '../../core/index.js';
import { hashBlock } from './block-map.js';

/** Bytes of one block's hash in a block map. */
const HASH = 32;

const zeroHashes = new Map<number, Buffer>();

/** The hash of `length` zero bytes, computed once per length. */
export function zeroBlockHash(length: number): Buffer {
  let hash = zeroHashes.get(length);
  if (hash === undefined) {
    hash = hashBlock(Buffer.alloc(length));
    zeroHashes.set(length, hash);
  }
  return hash;
}

/**
 * The hashes of each `block`-sized piece of `data` (the last may be shorter), 32 bytes each.
 * All-zero blocks, most of a sparse disk, are recognised by comparison instead of hashed.
 */
export function hashBlocks(data: Buffer, block: number): Uint8Array {
  const count = Math.ceil(data.length / block);
  const out = new Uint8Array(new ArrayBuffer(count * HASH));
  for (let i = 0; i < count; i++) {
    const piece = data.subarray(i * block, (i + 1) * block);
    out.set(isAllZero(piece) ? zeroBlockHash(piece.length) : hashBlock(piece), i * HASH);
  }
  return out;
}

/** Hashes reads of a disk block by block; the data comes back with the hashes. */
export interface BlockHasher {
  hash(data: Buffer, block: number): Promise<{ data: Buffer; hashes: Uint8Array }>;
  close(): Promise<void>;
}

/** Hashes on the calling thread: for small disks and for tests run from sources. */
class InlineBlockHasher implements BlockHasher {
  hash(data: Buffer, block: number): Promise<{ data: Buffer; hashes: Uint8Array }> {
    return Promise.resolve({ data, hashes: hashBlocks(data, block) });
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * Hashes on one worker thread per core, so a capture reads at the disk's speed rather than at
 * one core's SHA-256 speed (about 1 GB/s on the build machines). Each read is transferred to a
 * worker, not copied, and transferred back with its hashes.
 */
class WorkerBlockHasher implements BlockHasher {
  private readonly workers: Worker[];
  private readonly pending = new Map<
    number,
    { resolve: (r: { data: Buffer; hashes: Uint8Array }) => void; reject: (e: unknown) => void }
  >();
  private sequence = 0;
  private failure: unknown;

  constructor(script: URL, threads: number) {
    this.workers = Array.from({ length: threads }, () => {
      const worker = new Worker(fileURLToPath(script), {
        resourceLimits: { maxYoungGenerationSizeMb: 2 },
      });
      worker.on('message', (m: { seq: number; data: Uint8Array; hashes: Uint8Array }) => {
        const waiter = this.pending.get(m.seq);
        this.pending.delete(m.seq);
        waiter?.resolve({
          data: Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength),
          hashes: m.hashes,
        });
      });
      worker.on('error', (error) => {
        this.failure ??= error;
        for (const waiter of this.pending.values()) waiter.reject(error);
        this.pending.clear();
      });
      return worker;
    });
  }

  hash(data: Buffer, block: number): Promise<{ data: Buffer; hashes: Uint8Array }> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const seq = (this.sequence += 1);
    const worker = this.workers[seq % this.workers.length]!;
    // Only a buffer that owns its memory alone can be transferred; a view into a shared one
    // (Node's pool, a larger buffer) is copied first.
    const own =
      data.byteOffset === 0 && data.buffer.byteLength === data.byteLength
        ? data
        : Buffer.from(data);
    return new Promise((resolve, reject) => {
      this.pending.set(seq, { resolve, reject });
      worker.postMessage({ seq, data: own, block }, [own.buffer as ArrayBuffer]);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** Below this much data, starting threads costs more than hashing on the calling thread. */
const WORKER_THRESHOLD = 64 * 1024 * 1024;

/**
 * A hasher for `bytes` bytes of disk: worker threads when there is enough to hash and the
 * compiled worker script exists (the built program), otherwise the calling thread.
 */
export function createBlockHasher(
  bytes: number,
  script = new URL('./block-hash-worker.js', import.meta.url),
): BlockHasher {
  const threads = availableParallelism();
  if (bytes < WORKER_THRESHOLD || threads < 2 || !existsSync(fileURLToPath(script)))
    return new InlineBlockHasher();
  return new WorkerBlockHasher(script, threads);
}
