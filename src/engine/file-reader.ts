import { closeSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { isAllZero } from '../core/index.js';
import type { Chunker } from './chunker.js';
import type { ContentPiece } from './tree.js';
import { scanZeroRun, ZERO_BLOCK } from './zero-runs.js';

/** What {@link saveFileContent} needs of a blob writer: hash, store if new, return the id. */
export interface ChunkSink {
  save(type: 'data', data: Uint8Array): Promise<{ id: string }>;
}

/**
 * Files up to this size are read with synchronous calls: for the many small files of a typical
 * tree, one thread-pool round trip per open/read/close costs four times the I/O itself.
 */
const SMALL_FILE = 1024 * 1024;

/**
 * Read window: a small file's size plus one byte (to notice growth), or for large files the
 * largest chunk plus 1 MiB, so a full chunk always fits after shifting and each refill is large.
 */
function windowSize(maxChunk: number, fileSize: number): number {
  return Math.min(fileSize + 1, maxChunk + READ_SLACK);
}

const READ_SLACK = 1024 * 1024;

/** True when {@link saveFileContent} reads this file with large asynchronous reads. */
export function isLargeFile(size: number): boolean {
  return size >= SMALL_FILE;
}

/** Reads up to `length` bytes at file offset `position` into `buffer[offset…]`; 0 at the end. */
export type ReadAt = (
  buffer: Buffer,
  offset: number,
  length: number,
  position: number,
) => number | Promise<number>;

/**
 * Reads one file, cuts it into chunks and saves each through the sink; all-zero chunks become
 * holes. `onBytes` reports progress. Returns the content pieces and the bytes actually read.
 */
export async function saveFileContent(
  path: Buffer,
  expectedSize: number,
  chunker: Chunker,
  maxChunk: number,
  sink: ChunkSink,
  onBytes: (n: number) => void,
  signal?: AbortSignal,
): Promise<{ content: ContentPiece[]; size: number }> {
  if (expectedSize < SMALL_FILE) {
    const fd = openSync(path, 'r');
    return chunkFile(
      (b, o, l, p) => readSync(fd, b, o, l, p),
      expectedSize,
      chunker,
      maxChunk,
      sink,
      onBytes,
      signal,
    ).finally(() => closeSync(fd));
  }
  const handle = await open(path, 'r');
  return chunkFile(
    async (b, o, l, p) => (await handle.read(b, o, l, p)).bytesRead,
    expectedSize,
    chunker,
    maxChunk,
    sink,
    onBytes,
    signal,
  ).finally(() => handle.close());
}

/**
 * Cuts a byte stream into chunks and zero runs (holes) and saves each chunk through the sink.
 * Exported for tests, which feed it short reads to show that cuts do not depend on them.
 */
export async function chunkFile(
  readAt: ReadAt,
  expectedSize: number,
  chunker: Chunker,
  maxChunk: number,
  sink: ChunkSink,
  onBytes: (n: number) => void,
  signal?: AbortSignal,
): Promise<{ content: ContentPiece[]; size: number }> {
  let buffer = Buffer.allocUnsafeSlow(windowSize(maxChunk, expectedSize));
  const content: ContentPiece[] = [];
  let start = 0;
  let end = 0;
  let position = 0;
  let eof = false;
  let runOpen = false;
  for (;;) {
    while (!eof && end < buffer.byteLength) {
      signal?.throwIfAborted();
      const bytesRead = await readAt(buffer, end, buffer.byteLength - end, position);
      if (bytesRead === 0) eof = true;
      end += bytesRead;
      position += bytesRead;
      onBytes(bytesRead);
    }
    while (start < end) {
      const ahead = scanZeroRun(buffer, start, end, position - end, eof, maxChunk, runOpen);
      if (ahead.kind === 'run' && ahead.at === start) {
        addHole(content, ahead.length);
        start += ahead.length;
        // A run that reaches the window's end goes on in the next one, however short.
        runOpen = !eof && end - start < ZERO_BLOCK;
        continue;
      }
      // Nothing can be decided before more is read (and an open run stays open).
      if (ahead.kind === 'data' && ahead.knownEnd === start) break;
      runOpen = false;
      // Data before a zero run is cut where the run begins; otherwise where the chunker says.
      const length =
        ahead.kind === 'run'
          ? chunker.nextCut(buffer, start, ahead.at, true)
          : chunker.nextCut(buffer, start, ahead.knownEnd, eof && ahead.knownEnd === end);
      if (length <= 0) break;
      const chunk = buffer.subarray(start, start + length);
      if (isAllZero(chunk)) addHole(content, length);
      else content.push((await sink.save('data', chunk)).id);
      start += length;
    }
    if (eof && start >= end) return { content, size: position };
    if (start > 0) {
      // Saved chunks were hashed and handed over (copied or sealed) before save resolved,
      // so their bytes may be overwritten now.
      buffer.copy(buffer, 0, start, end);
      end -= start;
      start = 0;
    } else if (end === buffer.byteLength) {
      // The file grew beyond what stat said: widen the window.
      const wider = Buffer.allocUnsafeSlow(Math.min(buffer.byteLength * 2, maxChunk + READ_SLACK));
      buffer.copy(wider, 0, 0, end);
      buffer = wider;
    }
  }
}

/** Records `length` bytes of hole, merged with a hole just before it. */
function addHole(content: ContentPiece[], length: number): void {
  const last = content[content.length - 1];
  if (typeof last === 'number') content[content.length - 1] = last + length;
  else content.push(length);
}
