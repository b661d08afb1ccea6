/** Worker thread body of {@link WorkerBlobOpener}: authenticate and decompress blobs off the main thread. */
import { parentPort, workerData } from 'node:worker_threads';
import { openSpanInline, type SpanBlob } from './blob-opener.js';

const key = Buffer.from((workerData as { key: Uint8Array }).key);

parentPort?.on('message', (message: { seq: number; span: Uint8Array; blobs: SpanBlob[] }) => {
  const span = Buffer.from(message.span.buffer, message.span.byteOffset, message.span.byteLength);
  const transfer: ArrayBuffer[] = [];
  const results = openSpanInline(key, span, message.blobs).map((r) => {
    if ('error' in r) return { error: r.error.message, code: r.error.code };
    // Decompressed output may share a buffer; transfer an exact copy.
    const exact = new Uint8Array(r.data.byteLength);
    exact.set(r.data);
    transfer.push(exact.buffer);
    return { data: exact };
  });
  parentPort?.postMessage({ seq: message.seq, results }, transfer);
});
