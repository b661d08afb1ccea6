import { existsSync, writeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { HoldfastError, isHoldfastError, type ErrorCode } from '../core/index.js';
import { unsealBlob, withUnsealedBlob, type BlobType } from './blob-codec.js';
import { CODEC_THREAD_LIMITS, defaultSealThreads } from './blob-sealer.js';
import { payloadLengthError } from './codec.js';
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

/** Where one opened blob goes: a file descriptor of this process and a position in it. */
export interface SpanWrite {
  readonly fd: number;
  readonly position: number;
}

/** A blob inside a span, with every place its plaintext is to be written. */
export interface SpanBlobWrites extends SpanBlob {
  readonly writes: readonly SpanWrite[];
}

/**
 * Result for one blob to be written: why it could not be opened, or per write (in the order of
 * its `writes`) undefined when every byte is written, else the error the write failed with (its
 * `code` kept, also when it failed on another thread).
 */
export type WrittenBlob =
  | { readonly error: HoldfastError }
  | { readonly failures: ReadonlyArray<NodeJS.ErrnoException | undefined> };

/** Decrypts, authenticates and decompresses blobs, possibly on other threads. */
export interface BlobOpener {
  /**
   * Opens every blob of a span read from one pack; results in the order of `blobs`. Takes
   * ownership of `span`: it may be handed to another thread, leaving it empty here.
   */
  openSpan(span: Buffer, blobs: readonly SpanBlob[]): Promise<OpenedBlob[]>;
  /**
   * Opens every blob of a span and writes its plaintext where it goes, on the thread that
   * opened it, so the plaintext never crosses threads; results in the order of `blobs`. Takes
   * ownership of `span` as {@link openSpan} does. The caller MUST keep every descriptor open
   * until the returned promise settles.
   */
  writeSpan(span: Buffer, blobs: readonly SpanBlobWrites[]): Promise<WrittenBlob[]>;
  /** Stops any threads. */
  close(): Promise<void>;
}

/** Opens every blob of a span on the calling thread. */
export function openSpanInline(
  key: Buffer,
  span: Buffer,
  blobs: readonly SpanBlob[],
): OpenedBlob[] {
  return blobs.map((b) =>
    attempt(() => {
      const data = unsealBlob(key, b.type, b.id, sealedBytes(span, b));
      if (data.byteLength !== b.rawLength)
        throw payloadLengthError(`Blob ${b.id.slice(0, 12)}`, data.byteLength, b.rawLength);
      return { data };
    }),
  );
}

/**
 * Opens every blob of a span on the calling thread and writes it where it goes, one blob at a
 * time through this thread's scratch buffer (see {@link withUnsealedBlob}), so that no blob
 * needs memory of its own and each is written while the cache still holds it.
 */
export function writeSpanInline(
  key: Buffer,
  span: Buffer,
  blobs: readonly SpanBlobWrites[],
): WrittenBlob[] {
  return blobs.map((b) =>
    attempt(() => ({
      failures: withUnsealedBlob(key, b.type, b.id, sealedBytes(span, b), b.rawLength, (data) =>
        b.writes.map((w) => writeAll(w.fd, data, w.position)),
      ),
    })),
  );
}

/** A blob's sealed bytes in its span; throws when the span ends before the blob does. */
function sealedBytes(span: Buffer, b: SpanBlob): Buffer {
  const sealed = span.subarray(b.offset, b.offset + b.length);
  if (sealed.byteLength !== b.length) {
    throw new HoldfastError(
      'VAULT_INTEGRITY',
      `Blob ${b.id.slice(0, 12)} is cut short: its pack is truncated.`,
    );
  }
  return sealed;
}

/** `open()`'s result, or the error it threw as a VAULT_INTEGRITY result. */
function attempt<T extends object>(open: () => T): T | { error: HoldfastError } {
  try {
    return open();
  } catch (error) {
    return {
      error: isHoldfastError(error) ? error : new HoldfastError('VAULT_INTEGRITY', String(error)),
    };
  }
}

function writeAll(fd: number, data: Buffer, position: number): NodeJS.ErrnoException | undefined {
  try {
    let written = 0;
    while (written < data.byteLength) {
      written += writeSync(fd, data, written, data.byteLength - written, position + written);
    }
    return undefined;
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
}

/** Opens blobs on the calling thread. */
export class InlineBlobOpener implements BlobOpener {
  constructor(private readonly key: Buffer) {}

  openSpan(span: Buffer, blobs: readonly SpanBlob[]): Promise<OpenedBlob[]> {
    return Promise.resolve(openSpanInline(this.key, span, blobs));
  }

  writeSpan(span: Buffer, blobs: readonly SpanBlobWrites[]): Promise<WrittenBlob[]> {
    return Promise.resolve(writeSpanInline(this.key, span, blobs));
  }

  async close(): Promise<void> {}
}

type WireError = { error: string; code: ErrorCode };
type WireOpened = { data: Uint8Array } | WireError;
/** A failed write as it crosses threads: the error's code and message. */
export type WireWriteFailure = { code?: string; message: string };
type WireWritten = { failures: Array<WireWriteFailure | undefined> } | WireError;

/** A failed write for sending to another thread, which {@link fromWire} turns back into one. */
export function toWire(failure: NodeJS.ErrnoException | undefined): WireWriteFailure | undefined {
  if (!failure) return undefined;
  return failure.code === undefined
    ? { message: failure.message }
    : { code: failure.code, message: failure.message };
}

function fromWire(failure: WireWriteFailure | undefined): NodeJS.ErrnoException | undefined {
  if (!failure) return undefined;
  const error: NodeJS.ErrnoException = new Error(failure.message);
  if (failure.code !== undefined) error.code = failure.code;
  return error;
}

/** What a worker is asked: open a span's blobs and send them back, or write them itself. */
export interface OpenRequest {
  readonly seq: number;
  readonly kind: 'open' | 'write';
  readonly span: Uint8Array;
  readonly blobs: readonly SpanBlob[] | readonly SpanBlobWrites[];
}

function wireError(r: WireError | undefined): { error: HoldfastError } {
  return {
    error: new HoldfastError(r?.code ?? 'INTERNAL', r?.error ?? 'blob could not be opened'),
  };
}

/**
 * Opens blobs on worker threads, one message per pack span each way, so decompression uses
 * every core while the main thread creates files.
 */
export class WorkerBlobOpener implements BlobOpener {
  private readonly workers: Array<{
    worker: Worker;
    pending: Map<number, (results: unknown[]) => void>;
  }> = [];
  private sequence = 0;

  constructor(key: Buffer, threads: number, script: URL) {
    for (let i = 0; i < threads; i += 1) {
      const worker = new Worker(fileURLToPath(script), {
        workerData: { key: new Uint8Array(key) },
        resourceLimits: CODEC_THREAD_LIMITS,
      });
      const entry = { worker, pending: new Map<number, (results: unknown[]) => void>() };
      worker.on('message', (message: { seq: number; results: unknown[] }) => {
        const done = entry.pending.get(message.seq);
        entry.pending.delete(message.seq);
        done?.(message.results);
      });
      worker.on('error', (error) => {
        // One result stands for every blob of each span the thread had.
        const failure: WireError = { error: String(error), code: 'INTERNAL' };
        for (const done of entry.pending.values()) done([failure]);
        entry.pending.clear();
      });
      this.workers.push(entry);
    }
  }

  async openSpan(span: Buffer, blobs: readonly SpanBlob[]): Promise<OpenedBlob[]> {
    const results = (await this.post('open', span, blobs)) as WireOpened[];
    return blobs.map((_, i) => {
      const r = results[i] ?? results[0];
      if (r && 'data' in r)
        return { data: Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength) };
      return wireError(r);
    });
  }

  async writeSpan(span: Buffer, blobs: readonly SpanBlobWrites[]): Promise<WrittenBlob[]> {
    const results = (await this.post('write', span, blobs)) as WireWritten[];
    return blobs.map((_, i) => {
      const r = results[i] ?? results[0];
      return r && 'failures' in r ? { failures: r.failures.map(fromWire) } : wireError(r);
    });
  }

  /** Sends a span to the least busy thread; resolves with its results, one per blob. */
  private post(
    kind: OpenRequest['kind'],
    span: Buffer,
    blobs: OpenRequest['blobs'],
  ): Promise<unknown[]> {
    const target = this.workers.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    const seq = (this.sequence += 1);
    const sent = ownedBytes(span);
    const request: OpenRequest = { seq, kind, span: sent, blobs };
    return new Promise<unknown[]>((resolve) => {
      target.pending.set(seq, resolve);
      target.worker.postMessage(request, [sent.buffer as ArrayBuffer]);
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
