/** Worker thread body of {@link WorkerBlobOpener}: authenticate and decompress blobs off the main thread. */
import { parentPort, workerData } from 'node:worker_threads';
import { openSpanInline, ownedBytes, type SpanBlob } from './blob-opener.js';
import { releaseBuffer } from './release-buffer.js';

const key = Buffer.from((workerData as { key: Uint8Array }).key);

parentPort?.on('message', (message: { seq: number; span: Uint8Array; blobs: SpanBlob[] }) => {
  const span = Buffer.from(message.span.buffer, message.span.byteOffset, message.span.byteLength);
  const transfer = new Set<ArrayBuffer>();
  const opened = openSpanInline(key, span, message.blobs);
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
