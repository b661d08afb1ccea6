import { open, type FileHandle } from 'node:fs/promises';
import { HoldfastError } from '../core/index.js';
import type { DiskReader } from './partition-table.js';

/** A disk image file or block device opened for reading, with its size. */
export interface OpenDisk extends DiskReader {
  close(): Promise<void>;
}

/**
 * Opens an image file or a block device read-only. The size is the file's length, or for a
 * block device the end found by seeking (stat says 0 for devices). Short reads are errors: a
 * disk that shrinks while read is not read on.
 */
export async function openDisk(path: string): Promise<OpenDisk> {
  const handle = await open(path, 'r');
  try {
    const stats = await handle.stat();
    const size = stats.isBlockDevice() ? await sizeByReading(handle) : stats.size;
    return {
      size,
      read: async (offset, length) => {
        if (offset < 0 || length < 0 || offset + length > size)
          throw new HoldfastError(
            'SOURCE_UNREADABLE',
            `Read of ${length} bytes at ${offset} is outside the ${size}-byte disk ${path}.`,
          );
        const buffer = Buffer.alloc(length);
        const { bytesRead } = await handle.read(buffer, 0, length, offset);
        if (bytesRead !== length)
          throw new HoldfastError(
            'SOURCE_UNREADABLE',
            `${path} ended after ${offset + bytesRead} bytes while reading; it shrank?`,
          );
        return buffer;
      },
      close: () => handle.close(),
    };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/**
 * The length of what `handle` reads, found by bisection on one-byte reads (about 2·log2(size)
 * of them): block devices report size 0 in stat, and this needs no platform-specific ioctl.
 */
export async function sizeByReading(handle: FileHandle): Promise<number> {
  const probe = Buffer.alloc(1);
  const readable = async (at: number): Promise<boolean> =>
    (await handle.read(probe, 0, 1, at)).bytesRead === 1;
  if (!(await readable(0))) return 0;
  let high = 1;
  while (await readable(high - 1)) high *= 2;
  let low = high / 2;
  while (low < high) {
    const middle = Math.floor((low + high) / 2);
    if (await readable(middle)) low = middle + 1;
    else high = middle;
  }
  return low;
}
