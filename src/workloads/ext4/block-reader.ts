import type { DiskReader } from '../partition-table.js';
import { unreadable } from './damage.js';

/** Metadata is read and cached in aligned chunks of this many bytes (or one block, if larger). */
const CHUNK_BYTES = 64 * 1024;
/** Chunks kept: 4 MiB of inode tables, directories and extent nodes. */
const CACHED_CHUNKS = 64;
/** File data is read in pieces of at most this many bytes. */
export const MAX_DATA_READ = 1024 * 1024;

/**
 * Blocks of one file system on a disk. Metadata goes through a small LRU cache of aligned
 * chunks, so that walking an inode table or a directory is not one disk read per block; file
 * data is read straight through. Every request is checked against the file system's end.
 */
export class BlockReader {
  private readonly chunks = new Map<number, Buffer>();
  private readonly chunkBlocks: number;

  constructor(
    private readonly disk: DiskReader,
    /** Byte offset of the file system on the disk. */
    private readonly base: number,
    readonly blockSize: number,
    readonly blocksCount: number,
  ) {
    this.chunkBlocks = Math.max(1, CHUNK_BYTES / blockSize);
  }

  /** Throws SOURCE_UNREADABLE unless blocks `[block, block + count)` lie inside the file system. */
  checkRange(block: number, count: number, what: () => string): void {
    if (!Number.isSafeInteger(block) || block < 0 || count < 1 || block + count > this.blocksCount)
      throw unreadable(
        `${what()} points at block ${block} (+${count}), outside the ${this.blocksCount}-block file system`,
      );
  }

  /** `count` blocks of metadata from `block`, through the cache. Callers must not modify it. */
  async metadata(block: number, count: number, what: () => string): Promise<Buffer> {
    this.checkRange(block, count, what);
    const first = Math.floor(block / this.chunkBlocks);
    const last = Math.floor((block + count - 1) / this.chunkBlocks);
    const parts: Buffer[] = [];
    for (let chunk = first; chunk <= last; chunk++) parts.push(await this.chunk(chunk));
    const joined = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    const start = (block - first * this.chunkBlocks) * this.blockSize;
    return joined.subarray(start, start + count * this.blockSize);
  }

  /** `count` blocks of file data from `block`, read from the disk (not cached). */
  async data(block: number, count: number, what: () => string): Promise<Buffer> {
    this.checkRange(block, count, what);
    return this.disk.read(this.base + block * this.blockSize, count * this.blockSize);
  }

  private async chunk(index: number): Promise<Buffer> {
    const cached = this.chunks.get(index);
    if (cached !== undefined) {
      // Re-inserting moves it to the young end of the Map's insertion order.
      this.chunks.delete(index);
      this.chunks.set(index, cached);
      return cached;
    }
    const first = index * this.chunkBlocks;
    const count = Math.min(this.chunkBlocks, this.blocksCount - first);
    const bytes = await this.disk.read(this.base + first * this.blockSize, count * this.blockSize);
    this.chunks.set(index, bytes);
    if (this.chunks.size > CACHED_CHUNKS) {
      const oldest = this.chunks.keys().next().value;
      if (oldest !== undefined) this.chunks.delete(oldest);
    }
    return bytes;
  }
}
