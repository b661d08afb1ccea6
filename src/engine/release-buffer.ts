import { MessageChannel } from 'node:worker_threads';

// Small buffers come from Node's shared 8 KiB pool, a view of which always leaves more than this
// much of its buffer uncovered.
const WHOLE_SLACK = 16;

/**
 * True when `bytes` covers its whole buffer but for a few bytes (a framed payload's type byte),
 * so that transferring or releasing the buffer concerns these bytes alone, never Node's shared
 * pool or a larger buffer they are a slice of.
 */
export function isWholeBuffer(bytes: Uint8Array): boolean {
  const buffer = bytes.buffer;
  return buffer instanceof ArrayBuffer && buffer.byteLength - bytes.byteLength <= WHOLE_SLACK;
}

// Posting to a closed port still detaches the transferred buffers (as the HTML spec requires)
// and then drops the message, freeing their memory on the spot.
const sink = new MessageChannel().port1;
sink.close();

/** Below this, waiting for the garbage collector costs little. */
const RELEASE_MIN = 64 * 1024;

/**
 * Frees the memory of a large buffer now instead of at the next garbage collection. V8 collects
 * when its own heap fills, which for code that moves MiB-sized buffers and allocates few objects
 * lets tens of MiB of dead buffers pile up on every thread. Afterwards `bytes` and every other
 * view of its buffer are empty: the caller MUST own the buffer alone and MUST NOT use it again.
 * Buffers that are small or not whole (see {@link isWholeBuffer}) are left to the collector.
 */
export function releaseBuffer(bytes: Uint8Array): void {
  if (bytes.byteLength < RELEASE_MIN || !isWholeBuffer(bytes)) return;
  sink.postMessage(null, [bytes.buffer as ArrayBuffer]);
}
