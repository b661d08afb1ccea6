/** Worker thread body of {@link WorkerBlockHasher}: hashes a read's blocks off the main thread. */
import { parentPort } from 'node:worker_threads';
import { hashBlocks } from './block-hashes.js';

interface Request {
  readonly seq: number;
  readonly data: Uint8Array;
  readonly block: number;
}

parentPort?.on('message', ({ seq, data, block }: Request) => {
  const hashes = hashBlocks(Buffer.from(data.buffer, data.byteOffset, data.byteLength), block);
  // The data goes back with its hashes: the capture writes changed blocks into the mirror.
  parentPort?.postMessage({ seq, data, hashes }, [
    data.buffer as ArrayBuffer,
    hashes.buffer as ArrayBuffer,
  ]);
});
