/** Worker thread body of {@link WorkerBlobOpener}: authenticate and decompress blobs off the main thread. */
import { parentPort, workerData } from 'node:worker_threads';
import {
  openSpanInline,
  ownedBytes,
  toWire,
  writeSpanInline,
  type OpenRequest,
  type SpanBlob,
  type SpanBlobWrites,
} from './blob-opener.js';
import { releaseBuffer } from './release-buffer.js';

const key = Buffer.from((workerData as { key: Uint8Array }).key);

parentPort?.on('message', (message: OpenRequest) => {
  const span = Buffer.from(message.span.buffer, message.span.byteOffset, message.span.byteLength);
  if (message.kind === 'write') {
    // The plaintext is written here and freed: only the outcome of each write goes back.
    const written = writeSpanInline(key, span, message.blobs as readonly SpanBlobWrites[]);
    releaseBuffer(span);
    const results = written.map((r) =>
      'error' in r
        ? { error: r.error.message, code: r.error.code }
        : { failures: r.failures.map(toWire) },
    );
    parentPort?.postMessage({ seq: message.seq, results });
    return;
  }
  const transfer = new Set<ArrayBuffer>();
  const opened = openSpanInline(key, span, message.blobs as readonly SpanBlob[]);
  // Every opened blob is a buffer of its own, so the span is dead now.
  releaseBuffer(span);
  const results = opened.map((r) => {
    if ('error' in r) return { error: r.error.message, code: r.error.code };
    // Opened blobs are almost always buffers of their own and move to the main thread as they
    // are; copying them first would double the memory each span needs.
    const data = ownedBytes(r.data);
    transfer.add(data.buffer as ArrayBuffer);
    return { data };
  });
  parentPort?.postMessage({ seq: message.seq, results }, [...transfer]);
});
