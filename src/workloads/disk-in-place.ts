import { open } from 'node:fs/promises';
import { HoldfastError } from '../core/index.js';
import { openDisk } from './disk-reader.js';
import { IMAGE_BLOCK } from '../engine/index.js';
import type { DiskReader } from './partition-table.js';

/** Bytes compared per step: whole blocks. */
const STEP = 8 * IMAGE_BLOCK;

/** What writing a disk over a device did. */
export interface InPlaceResult {
  readonly bytesCompared: number;
  readonly bytesWritten: number;
}

/**
 * Makes the first `from.size` bytes of the block device (or file) at `target` equal to `from`,
 * in place: each 512 KiB block is compared and written only when it differs, so bringing a
 * device back to a point close to its present state writes little. The device is flushed
 * before this returns. Not atomic: an interrupted write leaves a mix of both states, which is
 * why a replace takes a safety snapshot first and can simply be run again.
 *
 * A device smaller than the disk is refused before anything is written; a larger one keeps
 * its bytes past the disk's end.
 */
export async function writeDiskInPlace(
  from: DiskReader,
  target: string,
  options: {
    signal?: AbortSignal;
    onBytes?: (compared: number) => void;
    /** Only compare: count the bytes that differ (as `bytesWritten`) and write nothing. */
    compareOnly?: boolean;
  } = {},
): Promise<InPlaceResult> {
  const current = await openDisk(target);
  try {
    if (current.size < from.size)
      throw new HoldfastError(
        'USAGE_INVALID',
        `${target} holds ${current.size} bytes, less than the ${from.size} of the disk to restore onto it; give the device at least that size, or restore --as disks.`,
      );
    // Comparing only writes nothing: the target is opened for writing only when written.
    const handle = options.compareOnly ? undefined : await open(target, 'r+');
    let bytesWritten = 0;
    let bytesCompared = 0;
    try {
      for (let at = 0; at < from.size; at += STEP) {
        options.signal?.throwIfAborted();
        const length = Math.min(STEP, from.size - at);
        const [wanted, present] = await Promise.all([
          from.read(at, length),
          current.read(at, length),
        ]);
        for (let b = 0; b < length; b += IMAGE_BLOCK) {
          const end = Math.min(b + IMAGE_BLOCK, length);
          if (wanted.subarray(b, end).equals(present.subarray(b, end))) continue;
          if (handle === undefined) {
            bytesWritten += end - b;
            continue;
          }
          const { bytesWritten: n } = await handle.write(wanted, b, end - b, at + b);
          if (n !== end - b)
            throw new HoldfastError('INTERNAL', `A short write to ${target} at ${at + b}.`);
          bytesWritten += n;
        }
        bytesCompared += length;
        options.onBytes?.(bytesCompared);
      }
      await handle?.sync();
    } finally {
      await handle?.close();
    }
    return { bytesCompared, bytesWritten };
  } finally {
    await current.close();
  }
}
