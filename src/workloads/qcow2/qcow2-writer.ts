import { randomBytes } from 'node:crypto';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { HoldfastError, isHoldfastError } from '../../core/index.js';
import { MAX_CLUSTER_BITS, MAX_L1_BYTES, MIN_CLUSTER_BITS } from './header.js';
import { ImageBuilder } from './image-builder.js';

/** Guest bytes at a guest offset: one piece of the disk being written. */
export interface GuestPiece {
  readonly offset: number;
  readonly data: Uint8Array;
}

/** How to write the image. */
export interface Qcow2WriteOptions {
  /** A power of two from 512 bytes to 2 MiB; 64 KiB (qemu's default) when not given. */
  readonly clusterSize?: number;
  readonly signal?: AbortSignal;
}

/** What was written. */
export interface Qcow2WriteResult {
  readonly fileSize: number;
  /** Clusters holding data; all-zero clusters are not stored. */
  readonly dataClusters: number;
}

const DEFAULT_CLUSTER_SIZE = 64 * 1024;

/**
 * Writes a qcow2 v3 image at `path` of a `size`-byte disk from `pieces`: guest bytes in
 * increasing, non-overlapping order, as a restore reads them from a backup; the gaps between
 * pieces are zeros. Only clusters holding a non-zero byte are stored (docs/disks-qcow2.md).
 * The image is built under a temporary name in the same directory and renamed to `path` (an
 * existing file there is replaced) only once complete and flushed, so `path` never holds a
 * half-written image. Errors: RESTORE_TARGET_INVALID when the target cannot be created or the
 * size cannot be a qcow2 disk, RESTORE_WRITE_FAILED when writing fails, CANCELLED on abort.
 */
export async function writeQcow2(
  path: string,
  size: number,
  pieces: AsyncIterable<GuestPiece> | Iterable<GuestPiece>,
  options: Qcow2WriteOptions = {},
): Promise<Qcow2WriteResult> {
  const clusterBits = checkedClusterBits(options.clusterSize ?? DEFAULT_CLUSTER_SIZE);
  checkSize(size, clusterBits);
  const temporary = join(
    dirname(path),
    `.${basename(path)}.${randomBytes(6).toString('hex')}.partial`,
  );
  let handle: FileHandle;
  try {
    handle = await open(temporary, 'wx', 0o600);
  } catch (error) {
    throw classified(error, `Cannot create the qcow2 image ${path}`);
  }
  try {
    const builder = new ImageBuilder(handle, size, clusterBits, options.signal);
    await addPieces(builder, size, pieces);
    const fileSize = await builder.finish();
    await handle.sync();
    await handle.close();
    await rename(temporary, path);
    await syncDirectory(dirname(path));
    return { fileSize, dataClusters: builder.dataClusters };
  } catch (error) {
    await handle.close().catch(() => undefined);
    await unlink(temporary).catch(() => undefined);
    throw classified(error, `Writing the qcow2 image ${path} failed`);
  }
}

/** Cuts the pieces into whole guest clusters for the builder, zero-filling gaps within one. */
async function addPieces(
  builder: ImageBuilder,
  size: number,
  pieces: AsyncIterable<GuestPiece> | Iterable<GuestPiece>,
): Promise<void> {
  const clusterSize = builder.clusterSize;
  let end = 0;
  let cluster: { index: number; data: Buffer } | undefined;
  for await (const piece of pieces) {
    const { offset, data } = piece;
    if (!Number.isSafeInteger(offset) || offset < end || offset + data.length > size)
      throw new HoldfastError(
        'INTERNAL',
        `A piece of ${data.length} bytes at ${offset} is out of order or outside the ${size}-byte disk (pieces must increase and not overlap; the last ended at ${end}).`,
      );
    for (let done = 0; done < data.length;) {
      const position = offset + done;
      const index = Math.floor(position / clusterSize);
      const within = position - index * clusterSize;
      const count = Math.min(clusterSize - within, data.length - done);
      if (cluster?.index !== index) {
        if (cluster !== undefined) await builder.addCluster(cluster.index, cluster.data);
        cluster = { index, data: Buffer.alloc(clusterSize) };
      }
      cluster.data.set(data.subarray(done, done + count), within);
      done += count;
    }
    end = offset + data.length;
  }
  if (cluster !== undefined) await builder.addCluster(cluster.index, cluster.data);
}

function checkedClusterBits(clusterSize: number): number {
  const bits = Math.log2(clusterSize);
  if (!Number.isInteger(bits) || bits < MIN_CLUSTER_BITS || bits > MAX_CLUSTER_BITS)
    throw new HoldfastError(
      'RESTORE_TARGET_INVALID',
      `A qcow2 cluster size must be a power of two from 512 bytes to 2 MiB, not ${clusterSize}.`,
    );
  return bits;
}

function checkSize(size: number, clusterBits: number): void {
  // qemu sees a qcow2 disk in whole 512-byte sectors: a tail would be cut off silently.
  if (!Number.isSafeInteger(size) || size < 0 || size % 512 !== 0)
    throw new HoldfastError(
      'RESTORE_TARGET_INVALID',
      `A qcow2 image holds whole 512-byte sectors; a disk of ${size} bytes cannot be one (restore it as a raw image).`,
    );
  const clusterSize = 2 ** clusterBits;
  if (Math.ceil(size / (clusterSize * (clusterSize / 8))) * 8 > MAX_L1_BYTES)
    throw new HoldfastError(
      'RESTORE_TARGET_INVALID',
      `A ${size}-byte disk is too large for a qcow2 image with ${clusterSize}-byte clusters.`,
    );
}

async function syncDirectory(path: string): Promise<void> {
  const directory = await open(path, 'r');
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}

/** Our own errors pass through; file system errors become restore errors. */
function classified(error: unknown, what: string): HoldfastError {
  if (isHoldfastError(error)) return error;
  const code = (error as NodeJS.ErrnoException).code;
  const target = ['ENOENT', 'ENOTDIR', 'EACCES', 'EPERM', 'EROFS', 'EISDIR', 'EEXIST'];
  return new HoldfastError(
    code !== undefined && target.includes(code) ? 'RESTORE_TARGET_INVALID' : 'RESTORE_WRITE_FAILED',
    `${what}: ${(error as Error).message}.`,
    { cause: error },
  );
}
