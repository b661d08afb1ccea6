import { lstat, readlink } from 'node:fs/promises';
import { forEachLimit, HoldfastError } from '../core/index.js';
import { BlobReader } from './blob-reader.js';
import { FastCdcChunker } from './chunker.js';
import { blobIdOf } from './crypto.js';
import { saveFileContent } from './file-reader.js';
import type { Point } from './point.js';
import { planRestore, type RestoreFilter } from './restore-plan.js';
import type { Vault } from './vault.js';

/**
 * Re-reads what a restore wrote and compares it with the point: file content by re-chunking
 * and re-hashing (same chunker and key give the same ids), symlink targets, sizes and types.
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
  const chunker = new FastCdcChunker(vault.config.chunker, vault.keys.chunkerSeed);
  const sink = {
    save: (_type: 'data', data: Uint8Array) =>
      Promise.resolve({ id: blobIdOf(vault.keys.id, data) }),
  };
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
        const { content } = await saveFileContent(
          path,
          node.size,
          chunker,
          vault.config.chunker.maxSize,
          sink,
          (n) => (bytes += n),
          signal,
        );
        const expected = node.content ?? [];
        if (content.length !== expected.length || content.some((p, i) => p !== expected[i])) {
          onMismatch(display, 'content differs from the recovery point');
        }
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
