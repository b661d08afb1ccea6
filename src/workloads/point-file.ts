import { HoldfastError } from '../core/index.js';
import {
  BlobReader,
  findDirectory,
  loadTree,
  type ContentPiece,
  type Point,
  type TreeNode,
  type Vault,
} from '../engine/index.js';
import type { DiskReader } from './partition-table.js';

/** A file of a recovery point read at any offset: a disk of a machine point, say. */
export interface PointFile extends DiskReader {
  readonly node: TreeNode;
  /** The stretches that hold stored data, in order; the rest are holes. */
  dataRanges(): Array<{ offset: number; length: number }>;
}

/** Decrypted chunks kept for reads that come back to them (an ext4 walk does, often). */
const CACHED_CHUNKS = 32;

/**
 * Opens `path` (e.g. `disks/vda`) in a point for random-access reads, without restoring it:
 * file-level recovery, block exports and small reads like `machine.json` all read this way.
 * Holes read as zeros; each chunk is fetched (and authenticated) when first needed.
 */
export async function openPointFile(vault: Vault, point: Point, path: string): Promise<PointFile> {
  const reader = new BlobReader(vault);
  const parts = path.split('/').filter((p) => p !== '');
  const name = parts.pop();
  const dir = await findDirectory(reader, point.tree, parts.join('/'));
  const node = (await loadTree(reader, dir.tree)).find((n) => n.name.toString() === name);
  if (node === undefined || node.type !== 'file')
    throw new HoldfastError(
      'POINT_NOT_FOUND',
      `${path} is not a file in point ${point.id.slice(0, 12)}.`,
    );
  const content = node.content ?? [];
  const starts: number[] = [];
  let offset = 0;
  for (const piece of content) {
    starts.push(offset);
    offset += typeof piece === 'number' ? piece : (vault.index.get(piece)?.rawLength ?? NaN);
  }
  if (offset !== node.size)
    throw new HoldfastError(
      'VAULT_INTEGRITY',
      `The pieces of ${path} in point ${point.id.slice(0, 12)} do not add up to its size (or a chunk is missing from the index); run 'holdfast check'.`,
    );
  const cache = new Map<string, Promise<Buffer>>();
  const chunk = (id: string): Promise<Buffer> => {
    let loading = cache.get(id);
    if (loading === undefined) {
      loading = reader.load(id, 'data');
      loading.catch(() => cache.delete(id));
      cache.set(id, loading);
      if (cache.size > CACHED_CHUNKS) cache.delete(cache.keys().next().value!);
    }
    return loading;
  };
  return {
    node,
    size: node.size,
    dataRanges: () => {
      const ranges: Array<{ offset: number; length: number }> = [];
      content.forEach((piece, i) => {
        if (typeof piece === 'number') return;
        const offset = starts[i]!;
        const length = (starts[i + 1] ?? node.size) - offset;
        const last = ranges[ranges.length - 1];
        if (last && last.offset + last.length === offset) last.length += length;
        else ranges.push({ offset, length });
      });
      return ranges;
    },
    read: async (at, length) => {
      if (at < 0 || length < 0 || at + length > node.size)
        throw new HoldfastError(
          'SOURCE_UNREADABLE',
          `Read of ${length} bytes at ${at} is outside ${path} (${node.size} bytes).`,
        );
      const out = Buffer.alloc(length);
      let i = pieceAt(starts, at);
      while (i < content.length && starts[i]! < at + length) {
        const piece: ContentPiece = content[i]!;
        if (typeof piece !== 'number') {
          const data = await chunk(piece);
          const from = Math.max(at, starts[i]!);
          const to = Math.min(at + length, starts[i]! + data.length);
          data.copy(out, from - at, from - starts[i]!, to - starts[i]!);
        }
        i += 1;
      }
      return out;
    },
  };
}

/** Index of the piece holding byte `at` (binary search over piece starts). */
function pieceAt(starts: readonly number[], at: number): number {
  let low = 0;
  let high = starts.length - 1;
  while (low < high) {
    const middle = (low + high + 1) >> 1;
    if (starts[middle]! <= at) low = middle;
    else high = middle - 1;
  }
  return low;
}

/** Reads a whole small file of a point (`machine.json`, a configuration file). */
export async function readPointFile(vault: Vault, point: Point, path: string): Promise<Buffer> {
  const file = await openPointFile(vault, point, path);
  if (file.size > 16 * 1024 * 1024)
    throw new HoldfastError('USAGE_INVALID', `${path} is too large to read whole.`);
  return file.read(0, file.size);
}
