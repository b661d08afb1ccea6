import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { HoldfastError } from '../core/index.js';
import { sealBlobParts, type BlobType } from './blob-codec.js';
import type { CompressionSettings } from './codec.js';
import { isWholeBuffer, releaseBuffer } from './release-buffer.js';

/**
 * A sealed blob as the pieces that make it up, in order: appending them one after the other
 * writes the sealed blob, without first copying it into one buffer.
 */
export type SealedBlob = readonly Uint8Array[];

/** Compresses and encrypts blobs, possibly on other threads. */
export interface BlobSealer {
  /**
   * Seals one blob. The caller MUST NOT change `data` until the promise settles. The pieces
   * MUST be the caller's alone (they may be released once copied into a pack).
   */
  seal(type: BlobType, id: string, data: Uint8Array): Promise<SealedBlob>;
  /**
   * SHA-256 (hex) of `bytes`, which the caller gives up until the promise settles: they may move
   * to another thread and back. Resolves with the digest and the same bytes, possibly in a new
   * view; the caller MUST use that one, never `bytes` again. When `bytes` are a view of a
   * larger buffer, the whole buffer moves with them (and comes back as `bytes.buffer`).
   */
  digest(bytes: Buffer): Promise<Digested>;
  /** Stops any threads. */
  close(): Promise<void>;
}

/** What {@link BlobSealer.digest} resolves to. */
export interface Digested {
  readonly digest: string;
  readonly bytes: Buffer;
}

/** Hashes on the calling thread. */
function digestHere(bytes: Buffer): Promise<Digested> {
  return Promise.resolve({ digest: createHash('sha256').update(bytes).digest('hex'), bytes });
}

/**
 * Smallest buffer whose hashing moves to a thread; a smaller one may be a view of Node's shared
 * pool, which must never be transferred (and moving it would cost more than hashing it).
 */
const DIGEST_ON_THREAD = 64 * 1024;

/** Seals on the calling thread; for tests and tiny jobs. */
export class InlineBlobSealer implements BlobSealer {
  constructor(
    private readonly key: Buffer,
    private readonly compression: CompressionSettings | null,
  ) {}

  seal(type: BlobType, id: string, data: Uint8Array): Promise<SealedBlob> {
    return Promise.resolve(sealBlobParts(this.key, type, id, data, this.compression));
  }

  digest(bytes: Buffer): Promise<Digested> {
    return digestHere(bytes);
  }

  async close(): Promise<void> {}
}

interface Pending {
  resolve(sealed: SealedBlob): void;
  reject(error: unknown): void;
}

interface SealRequest {
  readonly seq: number;
  readonly type: BlobType;
  readonly id: string;
  readonly data: Uint8Array;
}

interface DigestWaiter {
  resolve(result: { hex: string; buffer: ArrayBuffer }): void;
  reject(error: unknown): void;
}

/**
 * A message from a sealing thread: sealed blobs (each with the buffer its plaintext came in,
 * handed back for reuse), or a digest with the buffer it hashed.
 */
type SealReply =
  | { results: Array<{ seq: number; sealed?: Uint8Array[]; error?: string; spare: ArrayBuffer }> }
  | { digest: { seq: number; hex: string; buffer: ArrayBuffer } };

interface SealWorker {
  readonly worker: Worker;
  readonly pending: Map<number, Pending>;
  readonly digests: Map<number, DigestWaiter>;
  queue: SealRequest[];
  queuedBytes: number;
}

/**
 * Heap limits of the sealing and opening threads. Their JavaScript objects are few and small (the
 * bytes they work on live outside the heap), so a small young generation does; by default it
 * grows to 8 MiB per thread, resident memory that buys nothing here.
 */
export const CODEC_THREAD_LIMITS = { maxYoungGenerationSizeMb: 2 } as const;

/** A batch is posted once it holds this much; posting one message per small blob costs more than sealing it. */
const BATCH_BYTES = 1024 * 1024;
const BATCH_COUNT = 256;

/**
 * Seals on a pool of worker threads so compression uses every core while the main thread reads
 * and chunks. Requests are batched per worker. Each worker holds a copy of the encryption key.
 */
export class WorkerBlobSealer implements BlobSealer {
  private readonly workers: SealWorker[] = [];
  private readonly spares = new SpareBuffers(SPARE_BYTES);
  private sequence = 0;
  private flushScheduled = false;

  /**
   * Threads start with the first blob to seal: a backup in which nothing changed seals nothing,
   * and starting a thread costs a core a tenth of a second.
   */
  constructor(
    private readonly key: Buffer,
    private readonly compression: CompressionSettings | null,
    private readonly threads: number,
    private readonly script: URL,
  ) {}

  private start(): void {
    const { key, compression, threads, script } = this;
    for (let i = 0; i < threads; i += 1) {
      const worker = new Worker(fileURLToPath(script), {
        workerData: { key: new Uint8Array(key), level: compression?.level ?? null },
        resourceLimits: CODEC_THREAD_LIMITS,
      });
      const entry: SealWorker = {
        worker,
        pending: new Map(),
        digests: new Map(),
        queue: [],
        queuedBytes: 0,
      };
      worker.on('message', (message: SealReply) => {
        if ('digest' in message) {
          const waiter = entry.digests.get(message.digest.seq);
          entry.digests.delete(message.digest.seq);
          waiter?.resolve(message.digest);
          return;
        }
        for (const result of message.results) {
          this.spares.give(result.spare);
          const waiter = entry.pending.get(result.seq);
          entry.pending.delete(result.seq);
          if (!waiter) continue;
          if (result.sealed) {
            waiter.resolve(result.sealed);
          } else {
            waiter.reject(
              new HoldfastError('INTERNAL', `Sealing a blob failed: ${result.error ?? 'unknown'}`),
            );
          }
        }
      });
      const failAll = (error: unknown): void => {
        for (const waiter of [...entry.pending.values(), ...entry.digests.values()])
          waiter.reject(error);
        entry.pending.clear();
        entry.digests.clear();
      };
      worker.on('error', failAll);
      // A thread that ends (closed, or gone for any reason) answers nothing more: whoever still
      // waits on it must hear so rather than wait forever.
      worker.on('exit', () =>
        failAll(new HoldfastError('INTERNAL', 'A sealing thread stopped before it answered.')),
      );
      this.workers.push(entry);
    }
  }

  seal(type: BlobType, id: string, data: Uint8Array): Promise<SealedBlob> {
    if (this.workers.length === 0) this.start();
    const target = this.workers.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    const seq = (this.sequence += 1);
    return new Promise((resolve, reject) => {
      target.pending.set(seq, { resolve, reject });
      // Posting a view clones its whole underlying buffer (a 16 MiB read window, or Node's shared
      // pool); a copy in a buffer of its own is transferred instead, which costs one memcpy and
      // no clone. The buffer comes back with the sealed blob and carries a later blob.
      const copy = this.spares.take(data.byteLength);
      copy.set(data);
      target.queue.push({ seq, type, id, data: copy });
      target.queuedBytes += copy.byteLength;
      if (target.queuedBytes >= BATCH_BYTES || target.queue.length >= BATCH_COUNT)
        this.post(target);
      else this.scheduleFlush();
    });
  }

  /**
   * Hashes a pack on the least busy sealing thread, moving its buffer there and back instead of
   * copying it: the main thread, which reads, chunks and hashes chunks, is a backup's bottleneck.
   */
  digest(bytes: Buffer): Promise<Digested> {
    const buffer = bytes.buffer;
    if (bytes.byteLength < DIGEST_ON_THREAD || !(buffer instanceof ArrayBuffer))
      return digestHere(bytes);
    if (this.workers.length === 0) this.start();
    const target = this.workers.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    const seq = (this.sequence += 1);
    const { byteOffset, byteLength } = bytes;
    return new Promise((resolve, reject) => {
      target.digests.set(seq, {
        resolve: ({ hex, buffer: back }) =>
          resolve({ digest: hex, bytes: Buffer.from(back, byteOffset, byteLength) }),
        reject,
      });
      target.worker.postMessage({ digest: { seq, buffer, byteOffset, byteLength } }, [buffer]);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
  }

  private post(target: SealWorker): void {
    if (target.queue.length === 0) return;
    target.worker.postMessage(
      { batch: target.queue },
      target.queue.map((r) => r.data.buffer as ArrayBuffer),
    );
    target.queue = [];
    target.queuedBytes = 0;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      for (const w of this.workers) this.post(w);
    });
  }
}

/** Below this, a piece of a sealed blob is copied into a message rather than moved. */
const MOVE_MIN = 64 * 1024;

/**
 * The pieces of a sealed blob as a sealing thread sends them: large pieces that are buffers of
 * their own move as they are (listed in `transfer`); runs of small ones (nonce, type byte, tag,
 * small blobs whole) are joined into one small copy each, as a view of a shared buffer would
 * be posted with all of that buffer.
 */
export function postableParts(parts: readonly Uint8Array[]): {
  parts: Uint8Array[];
  transfer: ArrayBuffer[];
} {
  const out: Uint8Array[] = [];
  const transfer: ArrayBuffer[] = [];
  let small: Uint8Array[] = [];
  const join = (): void => {
    if (small.length === 0) return;
    const joined = new Uint8Array(small.reduce((n, p) => n + p.byteLength, 0));
    let at = 0;
    for (const p of small) {
      joined.set(p, at);
      at += p.byteLength;
    }
    out.push(joined);
    small = [];
  };
  for (const part of parts) {
    if (part.byteLength >= MOVE_MIN && isWholeBuffer(part)) {
      join();
      out.push(part);
      transfer.push(part.buffer as ArrayBuffer);
    } else {
      small.push(part);
    }
  }
  join();
  return { parts: out, transfer };
}

/** Most bytes, and most buffers, of idle plaintext buffers kept for reuse. */
const SPARE_BYTES = 8 * 1024 * 1024;
const SPARE_COUNT = 32;
/** Smaller buffers come from the allocator's free lists, without page faults: not kept. */
const SPARE_MIN = 64 * 1024;

/**
 * Buffers for plaintext on its way to a sealing thread, reused once they come back: a fresh
 * large buffer per blob costs the kernel a page fault per 4 KiB written into it and the
 * allocator an mmap and munmap, for every byte a backup stores. Only large buffers are kept,
 * the oldest idle ones going first when the bounds are reached.
 */
export class SpareBuffers {
  private readonly free: ArrayBuffer[] = [];
  private freeBytes = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly maxCount = SPARE_COUNT,
  ) {}

  /** A view of exactly `size` bytes over a buffer of its own (at most twice as large). */
  take(size: number): Uint8Array {
    let best = -1;
    if (size >= SPARE_MIN) {
      for (let i = 0; i < this.free.length; i += 1) {
        const length = this.free[i]!.byteLength;
        const fits = length >= size && length <= 2 * size;
        if (fits && (best < 0 || length < this.free[best]!.byteLength)) best = i;
      }
    }
    if (best < 0) return new Uint8Array(Buffer.allocUnsafeSlow(size).buffer, 0, size);
    const [buffer] = this.free.splice(best, 1) as [ArrayBuffer];
    this.freeBytes -= buffer.byteLength;
    return new Uint8Array(buffer, 0, size);
  }

  /**
   * Keeps `buffer` for a later {@link take}; the oldest idle ones go beyond the bounds. A large
   * buffer not kept is freed at once: left to the collector, dead plaintext piles up by the
   * tens of MiB before the next collection.
   */
  give(buffer: ArrayBuffer | undefined): void {
    if (!buffer || buffer.byteLength < SPARE_MIN) return;
    if (buffer.byteLength > this.maxBytes) {
      releaseBuffer(new Uint8Array(buffer));
      return;
    }
    this.free.push(buffer);
    this.freeBytes += buffer.byteLength;
    while (this.freeBytes > this.maxBytes || this.free.length > this.maxCount) {
      const oldest = this.free.shift() as ArrayBuffer;
      this.freeBytes -= oldest.byteLength;
      releaseBuffer(new Uint8Array(oldest));
    }
  }
}

/**
 * Creates the fastest sealer available: worker threads when the compiled worker script exists
 * (the built CLI), otherwise inline (running from TypeScript sources, as unit tests do).
 */
export function createBlobSealer(
  key: Buffer,
  compression: CompressionSettings | null,
  threads: number = defaultSealThreads(),
): BlobSealer {
  const script = new URL('./blob-seal-worker.js', import.meta.url);
  if (threads < 1 || !existsSync(fileURLToPath(script)))
    return new InlineBlobSealer(key, compression);
  return new WorkerBlobSealer(key, compression, threads, script);
}

/** Sealing threads: one per core, or HOLDFAST_SEAL_THREADS (0 seals on the calling thread). */
export function defaultSealThreads(): number {
  const configured = Number(process.env['HOLDFAST_SEAL_THREADS']);
  return Number.isInteger(configured) && configured >= 0 ? configured : availableParallelism();
}
