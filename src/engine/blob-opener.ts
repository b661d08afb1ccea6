import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { HoldfastError, isHoldfastError, type ErrorCode } from '../core/index.js';
import { unsealBlob, type BlobType } from './blob-codec.js';
import { CODEC_THREAD_LIMITS, defaultSealThreads } from './blob-sealer.js';
import { isWholeBuffer } from './release-buffer.js';

/** One blob inside a span of pack bytes. */
export interface SpanBlob {
  readonly id: string;
  readonly type: BlobType;
  /** Offset within the span. */
  readonly offset: number;
  readonly length: number;
  /** Plaintext length the index records; an opened blob of another length is damaged. */
  readonly rawLength: number;
}

/** Result for one blob: its plaintext, or why it could not be opened. */
export type OpenedBlob = { readonly data: Buffer } | { readonly error: HoldfastError };

/** Decrypts, authenticates and decompresses blobs, possibly on other threads. */
export interface BlobOpener {
  /**
   * Opens every blob of a span read from one pack; results in the order of `blobs`. Takes
   * ownership of `span`: it may be handed to another thread, leaving it empty here.
   */
  openSpan(span: Buffer, blobs: readonly SpanBlob[]): Promise<OpenedBlob[]>;
  /** Stops any threads. */
  close(): Promise<void>;
}

/** Opens every blob of a span on the calling thread. */
export function openSpanInline(
  key: Buffer,
  span: Buffer,
  blobs: readonly SpanBlob[],
): OpenedBlob[] {
  return blobs.map((b) => {
    const sealed = span.subarray(b.offset, b.offset + b.length);
    try {
      if (sealed.byteLength !== b.length) {
        throw new HoldfastError(
          'VAULT_INTEGRITY',
          `Blob ${b.id.slice(0, 12)} is cut short: its pack is truncated.`,
        );
      }
      const data = unsealBlob(key, b.type, b.id, sealed);
      if (data.byteLength !== b.rawLength) {
        throw new HoldfastError(
          'VAULT_INTEGRITY',
          `Blob ${b.id.slice(0, 12)} holds ${data.byteLength} bytes where the index says ${b.rawLength}.`,
        );
      }
      return { data };
    } catch (error) {
      return {
        error: isHoldfastError(error) ? error : new HoldfastError('VAULT_INTEGRITY', String(error)),
      };
    }
  });
}

/** Opens blobs on the calling thread. */
export class InlineBlobOpener implements BlobOpener {
  constructor(private readonly key: Buffer) {}

  openSpan(span: Buffer, blobs: readonly SpanBlob[]): Promise<OpenedBlob[]> {
    return Promise.resolve(openSpanInline(this.key, span, blobs));
  }

  async close(): Promise<void> {}
}

type WireResult = { data: Uint8Array } | { error: string; code: ErrorCode };

/**
 * Opens blobs on worker threads, one message per pack span each way, so decompression uses
 * every core while the main thread writes files.
 */
export class WorkerBlobOpener implements BlobOpener {
  private readonly workers: Array<{
    worker: Worker;
    pending: Map<number, (results: WireResult[]) => void>;
  }> = [];
  private sequence = 0;

  constructor(key: Buffer, threads: number, script: URL) {
    for (let i = 0; i < threads; i += 1) {
      const worker = new Worker(fileURLToPath(script), {
        workerData: { key: new Uint8Array(key) },
        resourceLimits: CODEC_THREAD_LIMITS,
      });
      const entry = { worker, pending: new Map<number, (results: WireResult[]) => void>() };
      worker.on('message', (message: { seq: number; results: WireResult[] }) => {
        const done = entry.pending.get(message.seq);
        entry.pending.delete(message.seq);
        done?.(message.results);
      });
      worker.on('error', (error) => {
        const failure: WireResult = { error: String(error), code: 'INTERNAL' };
        for (const done of entry.pending.values()) done([failure]);
        entry.pending.clear();
      });
      this.workers.push(entry);
    }
  }

  async openSpan(span: Buffer, blobs: readonly SpanBlob[]): Promise<OpenedBlob[]> {
    const target = this.workers.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    const seq = (this.sequence += 1);
    const sent = ownedBytes(span);
    const results = await new Promise<WireResult[]>((resolve) => {
      target.pending.set(seq, resolve);
      target.worker.postMessage({ seq, span: sent, blobs }, [sent.buffer as ArrayBuffer]);
    });
    return blobs.map((_, i) => {
      const r = results[i] ?? results[0];
      if (r && 'data' in r)
        return { data: Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength) };
      return {
        error: new HoldfastError(r?.code ?? 'INTERNAL', r?.error ?? 'blob could not be opened'),
      };
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
  }
}

/**
 * `bytes` itself when it is the whole of its buffer (see {@link isWholeBuffer}), so transferring
 * its buffer moves memory instead of copying it; otherwise an exact copy, since transferring a
 * view of a larger or shared buffer would take all of that buffer. Callers MUST own `bytes`:
 * once transferred, it is empty on this thread.
 */
export function ownedBytes(bytes: Uint8Array): Uint8Array {
  if (isWholeBuffer(bytes)) return bytes;
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return copy;
}

/** Worker threads when the compiled worker script exists, otherwise inline (as in unit tests). */
export function createBlobOpener(key: Buffer, threads: number = defaultSealThreads()): BlobOpener {
  const script = new URL('./blob-open-worker.js', import.meta.url);
  if (threads < 1 || !existsSync(fileURLToPath(script))) return new InlineBlobOpener(key);
  return new WorkerBlobOpener(key, threads, script);
}
