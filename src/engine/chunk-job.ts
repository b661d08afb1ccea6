/** What reading and cutting one file takes and gives, shared by content-defined and block cutting. */
import type { ChunkSink } from './chunk-window.js';
import type { Chunker } from './chunker.js';
import type { ContentPiece } from './tree.js';

/** Reads up to `length` bytes at file offset `position` into `buffer[offset…]`; 0 at the end. */
export type ReadAt = (
  buffer: Buffer,
  offset: number,
  length: number,
  position: number,
) => number | Promise<number>;

/** The outcome of chunking one file. */
export interface FileContent {
  readonly content: ContentPiece[];
  /** Bytes actually read (the file may have changed size since it was listed). */
  readonly size: number;
}

/** How to chunk a file and where its chunks go. */
export interface ChunkJob {
  readonly chunker: Chunker;
  /** The chunker's largest chunk. */
  readonly maxChunk: number;
  readonly sink: ChunkSink;
  /** Progress: bytes read. */
  readonly onBytes: (n: number) => void;
  readonly signal?: AbortSignal;
}
