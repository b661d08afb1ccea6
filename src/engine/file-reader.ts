import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { HoldfastError } from '../core/index.js';
import { fileDataExtents, type ByteRange } from './file-extents.js';
import type { Chunker } from './chunker.js';
import { cutsAsDiskImage, chunkImageFile } from './image-file.js';
import { cutWindow, type ChunkingState, type ChunkSink, type ChunkWindow } from './chunk-window.js';
import type { ContentPiece } from './tree.js';
import { releaseBuffer } from './release-buffer.js';
import { MIN_ZERO_RUN, ZERO_BLOCK } from './zero-runs.js';

export type { ChunkSink } from './chunk-window.js';
export type { ChunkJob, FileContent, ReadAt } from './chunk-job.js';
import type { ChunkJob, FileContent, ReadAt } from './chunk-job.js';

/**
 * Files up to this size are read with synchronous calls: for the many small files of a typical
 * tree, one thread-pool round trip per open/read/close costs four times the I/O itself.
 */
const SMALL_FILE = 1024 * 1024;

/** Bytes per read of a large file; the next one is in flight while this one is chunked. */
const READ_AHEAD = 4 * 1024 * 1024;

/**
 * Fewest unallocated bytes (and least share of the file: one eighth) for which the file system's
 * extent map is asked for. The map comes from a child process, and starting one from a process
 * of a few hundred MiB costs about 0.2 s (its memory turns copy-on-write, then faults back page
 * by page): measured, a tree whose large binaries each had a 4 KiB hole or two backed up 1.5×
 * slower than the same tree without holes. Reading that many bytes of holes as zeros costs
 * less; zero runs found in them are still stored as holes.
 */
const MAP_HOLES_FROM = 32 * 1024 * 1024;

/** True when {@link saveFileContent} reads this file with large asynchronous reads. */
export function isLargeFile(size: number): boolean {
  return size >= SMALL_FILE;
}

/**
 * Reads one file, cuts it into chunks and zero runs and saves each chunk through the sink.
 * `onBytes` reports progress. Small files are read synchronously in one window; large ones
 * with a read always in flight while the previous one is chunked, and those that look like disk
 * images (see {@link cutsAsDiskImage}) in aligned blocks instead of by content.
 */
export async function saveFileContent(
  path: Buffer,
  expectedSize: number,
  chunker: Chunker,
  maxChunk: number,
  sink: ChunkSink,
  onBytes: (n: number) => void,
  signal?: AbortSignal,
): Promise<FileContent> {
  const job: ChunkJob = { chunker, maxChunk, sink, onBytes, ...(signal ? { signal } : {}) };
  if (!isLargeFile(expectedSize)) {
    const fd = openSync(path, 'r');
    return chunkFile((b, o, l, p) => readSync(fd, b, o, l, p), expectedSize, job).finally(() =>
      closeSync(fd),
    );
  }
  const handle = await open(path, 'r');
  try {
    // A sparse file's holes need not be read (vault-format §3) when there are enough of them to
    // pay for asking the file system where they are.
    const opened = await handle.stat();
    const mapped = mappablePath(path, handle.fd);
    const worthMapping = Math.max(MAP_HOLES_FROM, opened.size / 8);
    const data =
      mapped === undefined ? undefined : await fileDataExtents(mapped, opened, worthMapping);
    const read: ReadAt = async (b, o, l, p) => (await handle.read(b, o, l, p)).bytesRead;
    const size = opened.size;
    // A map with holes makes the file a disk image; the other files have no holes to skip.
    if (!cutsAsDiskImage(path, size, data)) return await chunkFileAhead(read, job);
    const reader = data === undefined ? read : skippingHoles(read, data, size);
    const content = await chunkImageFile(reader, size, data, job);
    if (data === undefined) return content;
    // Zeros stood in for holes up to the size seen at the start: a file that shrank meanwhile
    // would otherwise gain zeros it no longer has.
    const now = (await handle.stat()).size;
    if (now < content.size)
      throw new HoldfastError(
        'SOURCE_UNREADABLE',
        `The file shrank from ${content.size} to ${now} bytes while it was read; back it up again.`,
      );
    return content;
  } finally {
    await handle.close();
  }
}

/**
 * A path under which `filefrag` (another process) can open the file we hold open as `fd`: the
 * descriptor's entry in /proc, which names this very file whatever its name's bytes and
 * wherever it was renamed since. Without /proc, the file's own name when it is UTF-8 (command
 * arguments are strings); otherwise undefined, and the file is read whole.
 */
function mappablePath(path: Buffer, fd: number): string | undefined {
  const viaProc = `/proc/${process.pid}/fd/${fd}`;
  if (existsSync(viaProc)) return viaProc;
  const name = path.toString();
  return Buffer.from(name).equals(path) ? name : undefined;
}

/**
 * A reader that reads only the data of a file of `size` bytes (as `data` lists it; everything
 * else is a hole) and fills the holes of each request with zeros without a system call. At or
 * past `size` it always reads: the file may have grown.
 */
export function skippingHoles(read: ReadAt, data: readonly ByteRange[], size: number): ReadAt {
  let next = 0;
  return async (buffer, offset, length, position) => {
    if (position >= size) return read(buffer, offset, length, position);
    const end = Math.min(position + length, size);
    // Reads move forward: the data range to look at next only ever advances.
    while (next < data.length && data[next]!.offset + data[next]!.length <= position) next++;
    let at = position;
    for (let i = next; at < end; i++) {
      const range = data[i];
      const from = range === undefined ? end : Math.max(at, Math.min(range.offset, end));
      buffer.fill(0, offset + (at - position), offset + (from - position));
      at = from;
      if (range === undefined || at >= end) break;
      const to = Math.min(range.offset + range.length, end);
      while (at < to) {
        const n = await read(buffer, offset + (at - position), to - at, at);
        // The file ended early: what was read so far is all there is.
        if (n === 0) return at - position;
        at += n;
      }
    }
    return end - position;
  };
}

/**
 * Chunks a stream read into one window that starts at the expected size plus one byte (to
 * notice growth) and widens when the file turns out longer. Exported for tests, which feed it
 * short reads and wrong sizes to show that cuts depend on the bytes alone.
 */
export async function chunkFile(
  readAt: ReadAt,
  expectedSize: number,
  job: ChunkJob,
): Promise<FileContent> {
  const largest = tailReserve(job.maxChunk) + READ_AHEAD;
  const window: ChunkWindow = {
    buffer: Buffer.allocUnsafeSlow(Math.min(expectedSize + 1, largest)),
    start: 0,
    end: 0,
    base: 0,
    eof: false,
  };
  try {
    return await chunkGrowingWindow(readAt, window, job, largest);
  } finally {
    // Every chunk was copied or hashed before its save resolved: the window is ours alone.
    releaseBuffer(window.buffer);
  }
}

/** The loop of {@link chunkFile}; `window.buffer` is replaced when the window widens. */
async function chunkGrowingWindow(
  readAt: ReadAt,
  window: ChunkWindow,
  job: ChunkJob,
  largest: number,
): Promise<FileContent> {
  const { chunker, maxChunk, sink, onBytes, signal } = job;
  const state: ChunkingState = { content: [], runOpen: false };
  for (;;) {
    const { buffer } = window;
    while (!window.eof && window.end < buffer.byteLength) {
      signal?.throwIfAborted();
      const n = await readAt(
        buffer,
        window.end,
        buffer.byteLength - window.end,
        window.base + window.end,
      );
      window.eof = n === 0;
      window.end += n;
      onBytes(n);
    }
    await cutWindow(window, state, chunker, maxChunk, sink);
    if (window.eof && window.start >= window.end) {
      return { content: state.content, size: window.base + window.end };
    }
    if (window.start > 0) {
      buffer.copy(buffer, 0, window.start, window.end);
      window.base += window.start;
      window.end -= window.start;
      window.start = 0;
    } else if (window.end === buffer.byteLength) {
      // The file grew beyond what stat said: widen the window.
      window.buffer = Buffer.allocUnsafeSlow(Math.min(buffer.byteLength * 2, largest));
      buffer.copy(window.buffer, 0, 0, window.end);
      releaseBuffer(buffer);
    }
  }
}

/**
 * Room kept in front of each read for the bytes of the previous window that are not chunked
 * yet. {@link cutWindow} stops with less than a largest chunk plus a zero run left over, so a
 * tail always fits.
 */
function tailReserve(maxChunk: number): number {
  return maxChunk + MIN_ZERO_RUN + ZERO_BLOCK;
}

/**
 * Chunks a large file with two buffers: while one is chunked, the next read fills the other
 * after its reserve; the unchunked tail is then copied in front of the new bytes. Only tails
 * are copied, and the file system works while the chunker does. Exported for tests.
 */
export async function chunkFileAhead(readAt: ReadAt, job: ChunkJob): Promise<FileContent> {
  const { chunker, maxChunk, sink, onBytes, signal } = job;
  const reserve = tailReserve(maxChunk);
  const buffers = [0, 1].map(() => Buffer.allocUnsafeSlow(reserve + READ_AHEAD));
  const state: ChunkingState = { content: [], runOpen: false };
  let next = 0;
  let position = 0;
  const startRead = (buffer: Buffer): Promise<number> => {
    signal?.throwIfAborted();
    return Promise.resolve(readAt(buffer, reserve, READ_AHEAD, position));
  };
  // The read in flight, or the last one once the file has ended.
  let pending: Promise<number> = startRead(buffers[0]!);
  let window: ChunkWindow | undefined;
  try {
    for (;;) {
      const buffer = buffers[next]!;
      const n = await pending;
      onBytes(n);
      const readAt0 = position;
      position += n;
      // The tail of the previous window goes right in front of the bytes just read.
      const tail = window ? window.end - window.start : 0;
      if (window && tail > 0) window.buffer.copy(buffer, reserve - tail, window.start, window.end);
      window = {
        buffer,
        start: reserve - tail,
        end: reserve + n,
        base: readAt0 - reserve,
        eof: n === 0,
      };
      next = 1 - next;
      if (n > 0) pending = startRead(buffers[next]!);
      await cutWindow(window, state, chunker, maxChunk, sink);
      if (window.eof && window.start >= window.end) {
        return { content: state.content, size: position };
      }
    }
  } finally {
    // Never leave a read running into a buffer (or a handle the caller is about to close).
    await pending.catch(() => undefined);
    // Free the 12 MiB windows now rather than at some later garbage collection.
    for (const buffer of buffers) releaseBuffer(buffer);
  }
}
