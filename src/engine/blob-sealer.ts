import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { HoldfastError } from '../core/index.js';
import { sealBlob, type BlobType } from './blob-codec.js';
import type { CompressionSettings } from './codec.js';

/** Compresses and encrypts blobs, possibly on other threads. */
export interface BlobSealer {
  /** Seals one blob. The caller MUST NOT change `data` until the promise settles. */
  seal(type: BlobType, id: string, data: Uint8Array): Promise<Buffer>;
  /** Stops any threads. */
  close(): Promise<void>;
}

/** Seals on the calling thread; for tests and tiny jobs. */
export class InlineBlobSealer implements BlobSealer {
  constructor(
    private readonly key: Buffer,
    private readonly compression: CompressionSettings | null,
  ) {}

  seal(type: BlobType, id: string, data: Uint8Array): Promise<Buffer> {
    return Promise.resolve(sealBlob(this.key, type, id, data, this.compression));
  }

  async close(): Promise<void> {}
}

interface Pending {
  resolve(sealed: Buffer): void;
  reject(error: unknown): void;
}

interface SealWorker {
  readonly worker: Worker;
  readonly pending: Map<number, Pending>;
}

/**
 * Seals on a pool of worker threads so compression uses every core while the main thread reads
 * and chunks. Each worker holds a copy of the encryption key.
 */
export class WorkerBlobSealer implements BlobSealer {
  private readonly workers: SealWorker[] = [];
  private sequence = 0;

  constructor(key: Buffer, compression: CompressionSettings | null, threads: number, script: URL) {
    for (let i = 0; i < threads; i += 1) {
      const worker = new Worker(fileURLToPath(script), {
        workerData: { key: new Uint8Array(key), level: compression?.level ?? null },
      });
      const entry: SealWorker = { worker, pending: new Map() };
      worker.on('message', (message: { seq: number; sealed?: Uint8Array; error?: string }) => {
        const waiter = entry.pending.get(message.seq);
        entry.pending.delete(message.seq);
        if (!waiter) return;
        if (message.sealed)
          waiter.resolve(
            Buffer.from(
              message.sealed.buffer,
              message.sealed.byteOffset,
              message.sealed.byteLength,
            ),
          );
        else
          waiter.reject(
            new HoldfastError('INTERNAL', `Sealing a blob failed: ${message.error ?? 'unknown'}`),
          );
      });
      worker.on('error', (error) => {
        for (const waiter of entry.pending.values()) waiter.reject(error);
        entry.pending.clear();
      });
      worker.unref();
      this.workers.push(entry);
    }
  }

  seal(type: BlobType, id: string, data: Uint8Array): Promise<Buffer> {
    const target = this.workers.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    const seq = (this.sequence += 1);
    return new Promise((resolve, reject) => {
      target.pending.set(seq, { resolve, reject });
      // A view of a larger buffer would be cloned whole; send exactly the blob's bytes.
      const copy =
        data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data : data.slice();
      target.worker.postMessage({ seq, type, id, data: copy });
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
  }
}

/**
 * Creates the fastest sealer available: worker threads when the compiled worker script exists
 * (the built CLI), otherwise inline (running from TypeScript sources, as unit tests do).
 */
export function createBlobSealer(
  key: Buffer,
  compression: CompressionSettings | null,
  threads: number = availableParallelism(),
): BlobSealer {
  const script = new URL('./blob-seal-worker.js', import.meta.url);
  if (threads < 1 || !existsSync(fileURLToPath(script)))
    return new InlineBlobSealer(key, compression);
  return new WorkerBlobSealer(key, compression, threads, script);
}
