import { forEachLimit, HoldfastError } from '../core/index.js';
import type { BlobReader } from './blob-reader.js';
import { decodeTree, sameTime, type TreeNode } from './tree.js';

/** Loads and decodes one tree blob. */
export async function loadTree(
  reader: BlobReader,
  id: string,
  signal?: AbortSignal,
): Promise<TreeNode[]> {
  return decodeTree(await reader.load(id, 'tree', signal), `tree ${id.slice(0, 12)}`);
}

/**
 * Finds the tree id of the directory at `path` (absolute, inside the point) starting from a
 * root tree. Throws POINT_NOT_FOUND when the path is not a directory in the point.
 */
export async function findDirectory(
  reader: BlobReader,
  rootTree: string,
  path: string,
): Promise<{ tree: string; node?: TreeNode }> {
  let tree = rootTree;
  let node: TreeNode | undefined;
  for (const part of path.split('/').filter((p) => p !== '' && p !== '.')) {
    const nodes = await loadTree(reader, tree);
    node = nodes.find((n) => n.name.toString() === part);
    if (!node || node.type !== 'dir' || !node.subtree) {
      throw new HoldfastError(
        'POINT_NOT_FOUND',
        `${path} is not a directory in this recovery point.`,
      );
    }
    tree = node.subtree;
  }
  return node ? { tree, node } : { tree };
}

/** Walks a tree depth-first, yielding each node with its display path. */
export async function* walkTree(
  reader: BlobReader,
  treeId: string,
  prefix: string,
  recursive: boolean,
  signal?: AbortSignal,
): AsyncGenerator<{ path: string; node: TreeNode }> {
  for (const node of await loadTree(reader, treeId, signal)) {
    const path = `${prefix === '/' ? '' : prefix}/${node.name.toString()}`;
    yield { path, node };
    if (recursive && node.type === 'dir' && node.subtree)
      yield* walkTree(reader, node.subtree, path, true, signal);
  }
}

/** Kinds of difference between two points. */
export const CHANGE_KINDS = ['added', 'removed', 'modified', 'type-changed', 'metadata'] as const;
/** One of {@link CHANGE_KINDS}. */
export type ChangeKind = (typeof CHANGE_KINDS)[number];

/** Compares two trees, yielding each changed path; identical subtrees are skipped by id. */
export async function* diffTrees(
  reader: BlobReader,
  a: string | undefined,
  b: string | undefined,
  prefix: string,
): AsyncGenerator<{ path: string; change: ChangeKind }> {
  if (a === b) return;
  const left = a ? await loadTree(reader, a) : [];
  const right = b ? await loadTree(reader, b) : [];
  const byName = new Map(right.map((n) => [n.name.toString('latin1'), n]));
  for (const l of left) {
    const key = l.name.toString('latin1');
    const r = byName.get(key);
    byName.delete(key);
    const path = `${prefix === '/' ? '' : prefix}/${l.name.toString()}`;
    if (!r) {
      yield { path, change: 'removed' };
      if (l.type === 'dir') yield* diffTrees(reader, l.subtree, undefined, path);
    } else if (l.type !== r.type) {
      yield { path, change: 'type-changed' };
    } else if (l.type === 'dir') {
      if (!metadataEqual(l, r)) yield { path, change: 'metadata' };
      yield* diffTrees(reader, l.subtree, r.subtree, path);
    } else if (!contentEqual(l, r)) {
      yield { path, change: 'modified' };
    } else if (!metadataEqual(l, r)) {
      yield { path, change: 'metadata' };
    }
  }
  for (const r of byName.values()) {
    const path = `${prefix === '/' ? '' : prefix}/${r.name.toString()}`;
    yield { path, change: 'added' };
    if (r.type === 'dir') yield* diffTrees(reader, undefined, r.subtree, path);
  }
}

function contentEqual(a: TreeNode, b: TreeNode): boolean {
  if (a.size !== b.size) return false;
  if (a.target && b.target && !a.target.equals(b.target)) return false;
  const ca = a.content ?? [];
  const cb = b.content ?? [];
  return ca.length === cb.length && ca.every((p, i) => p === cb[i]);
}

function metadataEqual(a: TreeNode, b: TreeNode): boolean {
  return a.mode === b.mode && a.uid === b.uid && a.gid === b.gid && sameTime(a.mtime, b.mtime);
}

/**
 * Visits every node of the trees under `roots`, each distinct tree once (`seen` holds the tree
 * ids met, roots included), a level at a time with up to eight trees loading at once.
 */
export async function forEachTreeNode(
  roots: Iterable<string>,
  load: (treeId: string) => Promise<TreeNode[]>,
  visit: (node: TreeNode) => void,
  options: { seen?: Set<string>; onTree?: () => void } = {},
): Promise<Set<string>> {
  const seen = options.seen ?? new Set<string>();
  let frontier = [...roots].filter((id) => !seen.has(id));
  for (const id of frontier) seen.add(id);
  while (frontier.length > 0) {
    const next: string[] = [];
    await forEachLimit(frontier, 8, async (treeId) => {
      for (const node of await load(treeId)) {
        visit(node);
        if (node.subtree !== undefined && !seen.has(node.subtree)) {
          seen.add(node.subtree);
          next.push(node.subtree);
        }
      }
      options.onTree?.();
    });
    frontier = next;
  }
  return seen;
}
