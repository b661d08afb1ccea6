import { isAllZero } from '../core/index.js';
import type { Chunker } from './chunker.js';
import { appendPiece, type ContentPiece } from './tree.js';
import { scanZeroRun, ZERO_BLOCK } from './zero-runs.js';

/** What {@link cutWindow} needs of a blob writer: hash, store if new, return the id. */
export interface ChunkSink {
  save(type: 'data', data: Uint8Array): Promise<{ id: string }>;
}

/** Bytes of a file held in memory: `buffer[start, end)`, where `buffer[0]` is file offset `base`. */
export interface ChunkWindow {
  buffer: Buffer;
  start: number;
  end: number;
  base: number;
  /** `end` is the end of the file. */
  eof: boolean;
}

/** What one file's chunking carries from window to window. */
export interface ChunkingState {
  readonly content: ContentPiece[];
  /** A zero run reached the end of the last window and may go on in the next. */
  runOpen: boolean;
}

/**
 * Cuts `window` into chunks and zero runs (holes) from `start` on, saving each chunk through
 * the sink, until nothing more can be decided without reading further (or the file ends).
 * Advances `window.start`; the bytes before it may be overwritten once this returns, since
 * saved chunks were hashed and handed over (copied or sealed) before `save` resolved.
 */
export async function cutWindow(
  window: ChunkWindow,
  state: ChunkingState,
  chunker: Chunker,
  maxChunk: number,
  sink: ChunkSink,
): Promise<void> {
  const { buffer, end, base, eof } = window;
  while (window.start < end) {
    const start = window.start;
    const ahead = scanZeroRun(buffer, start, end, base, eof, maxChunk, state.runOpen);
    if (ahead.kind === 'run' && ahead.at === start) {
      appendPiece(state.content, ahead.length);
      window.start += ahead.length;
      // A run that reaches the window's end goes on in the next one, however short.
      state.runOpen = !eof && end - window.start < ZERO_BLOCK;
      continue;
    }
    // Nothing can be decided before more is read (and an open run stays open).
    if (ahead.kind === 'data' && ahead.knownEnd === start) return;
    state.runOpen = false;
    // Data before a zero run is cut where the run begins; otherwise where the chunker says.
    const length =
      ahead.kind === 'run'
        ? chunker.nextCut(buffer, start, ahead.at, true)
        : chunker.nextCut(buffer, start, ahead.knownEnd, eof && ahead.knownEnd === end);
    if (length <= 0) return;
    const chunk = buffer.subarray(start, start + length);
    if (isAllZero(chunk)) appendPiece(state.content, length);
    else state.content.push((await sink.save('data', chunk)).id);
    window.start += length;
  }
}
