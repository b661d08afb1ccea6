/** Worker thread body of {@link WorkerBlobSealer}: compress and encrypt blobs off the main thread. */
import { parentPort, workerData } from 'node:worker_threads';
import { sealBlob, type BlobType } from './blob-codec.js';
import { releaseBuffer } from './release-buffer.js';

const { key, level } = workerData as { key: Uint8Array; level: number | null };
const encryptionKey = Buffer.from(key);
const compression = level === null ? null : { level };

interface Request {
  seq: number;
  type: BlobType;
  id: string;
  data: Uint8Array;
}

parentPort?.on('message', (message: { batch: Request[] }) => {
  const results = message.batch.map((request) => {
    try {
      return {
        seq: request.seq,
        sealed: sealBlob(encryptionKey, request.type, request.id, request.data, compression),
      };
    } catch (error) {
      return { seq: request.seq, error: error instanceof Error ? error.message : String(error) };
    } finally {
      // The plaintext was transferred here for this request alone.
      releaseBuffer(request.data);
    }
  });
  const transfer = results.flatMap((r) => (r.sealed ? [r.sealed.buffer as ArrayBuffer] : []));
  parentPort?.postMessage({ results }, transfer);
});
