import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { createHash, createHmac } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { HoldfastError } from '../core/index.js';
import { ownedBytes } from './blob-opener.js';
import type { ByteRange } from './file-extents.js';

/** Bytes of one SHA-256 or HMAC-SHA-256. */
const HASH_BYTES = 32;

/**
 * SHA-256 (or HMAC-SHA-256 under `key`: the vault's blob ids) of each range of `data`, 32 bytes
 * each, in order. Ranges come as offset/length pairs.
 */
export function hashRanges(data: Buffer, ranges: Float64Array, key?: Buffer): Uint8Array {
  const out = new Uint8Array(new ArrayBuffer((ranges.length / 2) * HASH_BYTES));
  for (let i = 0; i < ranges.length; i += 2) {
    const piece = data.subarray(ranges[i]!, ranges[i]! + ranges[i + 1]!);
    const hash = key ? createHmac('sha256', key) : createHash('sha256');
    out.set(hash.update(piece).digest(), (i / 2) * HASH_BYTES);
  }
  return out;
}

/**
 * Hashes ranges of reads — a disk's blocks for its block map, or the pieces an image backup
 * stores, whose blob ids are keyed hashes — so that the thread reading and storing is not the
 * one hashing. The data is handed back with the hashes: it may move to another thread on the
 * way, and only the returned buffer may be used afterwards.
 */
export interface RangeHasher {
  hash(data: Buffer, ranges: readonly ByteRange[]): Promise<{ data: Buffer; hashes: Uint8Array }>;
  close(): Promise<void>;
}

/** Hashes on the calling thread: for little data and for tests run from sources. */
class InlineRangeHasher implements RangeHasher {
  constructor(private readonly key: Buffer | undefined) {}

  hash(data: Buffer, ranges: readonly ByteRange[]) {
    return Promise.resolve({ data, hashes: hashRanges(data, flatten(ranges), this.key) });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

type Waiter = {
  resolve: (r: { data: Buffer; hashes: Uint8Array }) => void;
  reject: (e: unknown) => void;
};

/**
 * Hashes on one worker thread per core: SHA-256 runs at about 1 GB/s per core on the build
 * machines, slower than a disk's data arrives. Each read is transferred to a thread, not copied,
 * and transferred back with its hashes.
 */
class WorkerRangeHasher implements RangeHasher {
  private readonly workers: Worker[];
  private readonly pending = new Map<number, Waiter>();
  private sequence = 0;
  private failure: unknown;

  constructor(script: URL, threads: number, key: Buffer | undefined) {
    this.workers = Array.from({ length: threads }, () => {
      const worker = new Worker(fileURLToPath(script), {
        workerData: { key: key ? new Uint8Array(key) : null },
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
        this.failure ??= new HoldfastError(
          'INTERNAL',
          `A hashing thread failed: ${error.message}`,
          { cause: error },
        );
        for (const waiter of this.pending.values()) waiter.reject(this.failure);
        this.pending.clear();
      });
      return worker;
    });
  }

  hash(data: Buffer, ranges: readonly ByteRange[]) {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const seq = (this.sequence += 1);
    const worker = this.workers[seq % this.workers.length]!;
    // Only a buffer that owns its memory alone can be transferred; a view into a shared one
    // (Node's pool, a larger buffer) is copied first.
    const own = ownedBytes(data);
    const flat = flatten(ranges);
    return new Promise<{ data: Buffer; hashes: Uint8Array }>((resolve, reject) => {
      this.pending.set(seq, { resolve, reject });
      worker.postMessage({ seq, data: own, ranges: flat }, [
        own.buffer as ArrayBuffer,
        flat.buffer as ArrayBuffer,
      ]);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

function flatten(ranges: readonly ByteRange[]): Float64Array {
  const flat = new Float64Array(ranges.length * 2);
  ranges.forEach((r, i) => {
    flat[i * 2] = r.offset;
    flat[i * 2 + 1] = r.length;
  });
  return flat;
}

/** Below this much data, starting threads costs more than hashing on the calling thread. */
const WORKER_THRESHOLD = 64 * 1024 * 1024;

/** What a {@link RangeHasher} is for. */
export interface RangeHasherOptions {
  /** About how many bytes will be hashed: threads start only when it is worth it. */
  readonly bytes: number;
  /** HMAC key (a vault's blob-id key); plain SHA-256 without. */
  readonly key?: Buffer;
  /** The compiled worker script; tests point at the build. */
  readonly script?: URL;
}

/**
 * A hasher: worker threads when there is enough to hash, the machine has more than one core and
 * the compiled worker script exists (the built program), otherwise the calling thread.
 */
export function createRangeHasher(options: RangeHasherOptions): RangeHasher {
  const script = options.script ?? new URL('./range-hash-worker.js', import.meta.url);
  const threads = availableParallelism();
  if (options.bytes < WORKER_THRESHOLD || threads < 2 || !existsSync(fileURLToPath(script)))
    return new InlineRangeHasher(options.key);
  return new WorkerRangeHasher(script, threads, options.key);
}
