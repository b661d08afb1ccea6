/** Worker thread body of {@link WorkerBlobSealer}: compress and encrypt blobs off the main thread. */
import { createHash } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { sealBlobParts, type BlobType } from './blob-codec.js';
import { postableParts } from './blob-sealer.js';

const { key, level } = workerData as { key: Uint8Array; level: number | null };
const encryptionKey = Buffer.from(key);
const compression = level === null ? null : { level };

interface Request {
  seq: number;
  type: BlobType;
  id: string;
  data: Uint8Array;
}

/** A pack to hash: the whole buffer moved here, hashed over its `[byteOffset, +byteLength)`. */
interface DigestRequest {
  seq: number;
  buffer: ArrayBuffer;
  byteOffset: number;
  byteLength: number;
}

function digest({ seq, buffer, byteOffset, byteLength }: DigestRequest): void {
  const hex = createHash('sha256')
    .update(new Uint8Array(buffer, byteOffset, byteLength))
    .digest('hex');
  // The buffer goes back to its owner whole.
  parentPort?.postMessage({ digest: { seq, hex, buffer } }, [buffer]);
}

parentPort?.on('message', (message: { batch: Request[] } | { digest: DigestRequest }) => {
  if ('digest' in message) return digest(message.digest);
  const transfer: ArrayBuffer[] = [];
  const results = message.batch.map((request) => {
    // The plaintext's buffer was transferred here for this request alone: it goes back with the
    // answer, to carry a later blob.
    const spare = request.data.buffer as ArrayBuffer;
    transfer.push(spare);
    try {
      const sealed = postableParts(
        sealBlobParts(encryptionKey, request.type, request.id, request.data, compression),
      );
      transfer.push(...sealed.transfer);
      return { seq: request.seq, sealed: sealed.parts, spare };
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      return { seq: request.seq, error: reason, spare };
    }
  });
  parentPort?.postMessage({ results }, transfer);
});
