import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeError } from '../../core/index.js';
import type { ByteRange } from '../byte-ranges.js';
import { IMAGE_BLOCK } from '../image-blocks.js';
import { flaggedExtents } from '../nbd/index.js';
import { QmpError, type QmpClient } from '../qemu/index.js';

/** A stopped bitmap to read: `key` names the disk in the result. */
export interface BitmapRead {
  readonly key: string;
  readonly node: string;
  readonly bitmap: string;
}

/**
 * Reads stopped bitmaps through one short-lived NBD server (QEMU runs one at most), then removes
 * them: per `key`, the image blocks no write touched. A disk missing from the result is read
 * whole; QEMU's refusal to start the server is said in a notice.
 */
export async function readDirtyBlocks(
  qmp: QmpClient,
  reads: readonly BitmapRead[],
  notice: (message: string) => void,
  timeoutMs: number,
): Promise<Map<string, boolean[]>> {
  const result = new Map<string, boolean[]>();
  const socketPath = join(tmpdir(), `holdfast-nbd-${randomBytes(6).toString('hex')}.sock`);
  try {
    await qmp.execute(
      'nbd-server-start',
      { addr: { type: 'unix', data: { path: socketPath } } },
      { timeoutMs: timeoutMs },
    );
  } catch (error) {
    notice(
      `QEMU could not start an NBD server to read its dirty bitmaps (${describeError(error)}); the disks are read whole.`,
    );
    return result;
  }
  try {
    for (const read of reads) {
      const id = `holdfast-export-${randomBytes(6).toString('hex')}`;
      await qmp.execute(
        'block-export-add',
        {
          type: 'nbd',
          id,
          'node-name': read.node,
          name: id,
          writable: false,
          bitmaps: [read.bitmap],
        },
        { timeoutMs: timeoutMs },
      );
      try {
        const { size, ranges } = await flaggedExtents({
          socketPath,
          exportName: id,
          context: `qemu:dirty-bitmap:${read.bitmap}`,
          timeoutMs: timeoutMs,
        });
        // A disk the capture finds of another size than QEMU's ignores this (disk-mirror.ts).
        result.set(read.key, blocksUntouched(size, ranges));
      } finally {
        await qmp
          .execute('block-export-del', { id, mode: 'hard' }, { timeoutMs: timeoutMs })
          .catch(() => undefined);
      }
    }
  } finally {
    await qmp.execute('nbd-server-stop', {}, { timeoutMs: timeoutMs }).catch(() => undefined);
    await rm(socketPath, { force: true });
    // Read or not, the stopped bitmaps have served: the next capture reads the new ones. An
    // export lets go of its bitmap only once QEMU has closed it, which may take a moment.
    for (const read of reads) await removeBitmap(qmp, read.node, read.bitmap, timeoutMs);
  }
  return result;
}

/**
 * Removes a bitmap, best effort. QEMU refuses while an export it just closed still holds the
 * bitmap, so a refusal is tried again a few times; a QEMU that does not answer is not.
 */
export async function removeBitmap(
  qmp: QmpClient,
  node: string,
  name: string,
  timeoutMs: number,
): Promise<void> {
  for (let attempt = 1; attempt <= 5; attempt += 1) {
    try {
      await qmp.execute('block-dirty-bitmap-remove', { node, name }, { timeoutMs });
      return;
    } catch (error) {
      if (!(error instanceof QmpError)) return;
      await new Promise((resolve) => setTimeout(resolve, 20 * attempt));
    }
  }
}

/** Per image block: true when no dirty range touches it. */
export function blocksUntouched(size: number, dirty: readonly ByteRange[]): boolean[] {
  const unchanged = new Array<boolean>(Math.ceil(size / IMAGE_BLOCK)).fill(true);
  for (const range of dirty) {
    const first = Math.floor(range.offset / IMAGE_BLOCK);
    const last = Math.floor((range.offset + range.length - 1) / IMAGE_BLOCK);
    for (let block = first; block <= last && block < unchanged.length; block += 1)
      unchanged[block] = false;
  }
  return unchanged;
}
