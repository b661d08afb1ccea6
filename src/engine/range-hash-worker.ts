/** Worker thread body of the {@link RangeHasher}: hashes ranges of a read off the main thread. */
import { parentPort, workerData } from 'node:worker_threads';
import { hashRanges } from './range-hashes.js';

const { key } = workerData as { key: Uint8Array | null };
const idKey = key === null ? undefined : Buffer.from(key);

interface Request {
  readonly seq: number;
  readonly data: Uint8Array;
  /** Offsets and lengths, two numbers per range. */
  readonly ranges: Float64Array;
}

parentPort?.on('message', ({ seq, data, ranges }: Request) => {
  const view = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const hashes = hashRanges(view, ranges, idKey);
  // The data goes back with its hashes: the caller still writes or stores it.
  parentPort?.postMessage({ seq, data, hashes }, [
    data.buffer as ArrayBuffer,
    hashes.buffer as ArrayBuffer,
  ]);
});
