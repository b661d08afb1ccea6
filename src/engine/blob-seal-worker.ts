/** Worker thread body of {@link WorkerBlobSealer}: compress and encrypt blobs off the main thread. */
import { parentPort, workerData } from 'node:worker_threads';
import { sealBlob, type BlobType } from './blob-codec.js';

const { key, level } = workerData as { key: Uint8Array; level: number | null };
const encryptionKey = Buffer.from(key);
const compression = level === null ? null : { level };

parentPort?.on(
  'message',
  (message: { seq: number; type: BlobType; id: string; data: Uint8Array }) => {
    try {
      const sealed = sealBlob(encryptionKey, message.type, message.id, message.data, compression);
      parentPort?.postMessage({ seq: message.seq, sealed });
    } catch (error) {
      parentPort?.postMessage({
        seq: message.seq,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  },
);
