import { lstat, open, readlink } from 'node:fs/promises';
import { forEachLimit, HoldfastError, isAllZero } from '../core/index.js';
import { BlobReader } from './blob-reader.js';
import { blobIdOf } from './crypto.js';
import type { Point } from './point.js';
import type { ContentPiece } from './tree.js';
import { planRestore, type RestoreFilter } from './restore-plan.js';
import type { Vault } from './vault.js';

/**
 * Re-reads what a restore wrote and compares it with the point: file content piece by piece
 * (each chunk's range hashed with the vault's key must give the chunk's id, each hole must read
 * as zeros — so it holds however the content was cut, by content or in disk blocks), symlink
 * targets, sizes and types.
 * Mismatches go to `onMismatch`; returns the number of entries checked.
 */
export async function verifyRestore(
  vault: Vault,
  point: Point,
  target: string,
  filter: RestoreFilter,
  onMismatch: (path: string, reason: string) => void,
  signal?: AbortSignal,
): Promise<{ checked: number; bytes: number }> {
  const root = Buffer.from(target.replace(/\/+$/, '') || '/');
  let checked = 0;
  let bytes = 0;
  const plan = planRestore(new BlobReader(vault), point.tree, filter, () => undefined, signal);
  await forEachLimit(plan, 4, async (entry) => {
    const path = Buffer.concat([root, Buffer.from('/'), entry.path]);
    const display = path.toString();
    const node = entry.node;
    try {
      const stats = await lstat(path);
      if (node.type === 'file') {
        if (!stats.isFile()) return onMismatch(display, 'is not a regular file');
        if (stats.size !== node.size)
          return onMismatch(display, `size ${stats.size}, expected ${node.size}`);
        const differs = await contentDiffers(vault, path, node.content ?? [], (n) => (bytes += n));
        if (differs !== undefined) onMismatch(display, differs);
      } else if (node.type === 'symlink') {
        const targetBytes = await readlink(path, { encoding: 'buffer' });
        if (!stats.isSymbolicLink() || !node.target || !targetBytes.equals(node.target))
          onMismatch(display, 'symlink target differs');
      } else if (node.type === 'dir' && !stats.isDirectory()) {
        onMismatch(display, 'is not a directory');
      }
      checked += 1;
    } catch (error) {
      if (error instanceof HoldfastError && error.code === 'CANCELLED') throw error;
      onMismatch(display, (error as Error).message);
    }
  });
  return { checked, bytes };
}

/** Reads per piece; a piece larger than this is read in parts (holes can be gigabytes). */
const HOLE_READ = 4 * 1024 * 1024;

/** Why the file at `path` does not hold `content`, or undefined when it does. */
async function contentDiffers(
  vault: Vault,
  path: Buffer,
  content: readonly ContentPiece[],
  onBytes: (n: number) => void,
): Promise<string | undefined> {
  const handle = await open(path, 'r');
  try {
    let offset = 0;
    for (const piece of content) {
      if (typeof piece === 'number') {
        for (let done = 0; done < piece; done += HOLE_READ) {
          const data = await readExactly(handle, offset + done, Math.min(HOLE_READ, piece - done));
          onBytes(data.length);
          if (!isAllZero(data)) return `bytes at ${offset + done} should be zeros`;
        }
        offset += piece;
        continue;
      }
      const length = vault.index.get(piece)?.rawLength;
      if (length === undefined) return `chunk ${piece.slice(0, 12)} is not in the vault index`;
      const data = await readExactly(handle, offset, length);
      onBytes(data.length);
      if (blobIdOf(vault.keys.id, data) !== piece)
        return `content differs from the recovery point at offset ${offset}`;
      offset += length;
    }
    return undefined;
  } finally {
    await handle.close();
  }
}

async function readExactly(
  handle: Awaited<ReturnType<typeof open>>,
  position: number,
  length: number,
): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buffer, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return buffer.subarray(0, done);
}
