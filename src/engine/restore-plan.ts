import { HoldfastError } from '../core/index.js';
import type { BlobReader } from './blob-reader.js';
import { ExcludeMatcher } from './exclude.js';
import { decodeTree, type TreeNode } from './tree.js';

/** One entry selected for restore, with its path relative to the target as raw bytes. */
export interface PlannedEntry {
  readonly node: TreeNode;
  /** Path inside the point, `/`-separated raw bytes without a leading slash. */
  readonly path: Buffer;
  /** Depth below the root; directories get metadata deepest first. */
  readonly depth: number;
  /** The planned entry of the directory holding this one; undefined at the top level. */
  readonly parent: PlannedEntry | undefined;
}

/** Filters of a restore. */
export interface RestoreFilter {
  readonly include?: readonly string[];
  readonly exclude?: readonly string[];
}

/** A directory being walked: its entries and how far the walk has got. */
interface Frame {
  readonly nodes: readonly TreeNode[];
  next: number;
  readonly parent: Buffer;
  readonly depth: number;
  readonly selected: boolean;
  /** The directory's own entry (undefined for the root). */
  readonly dir: PlannedEntry | undefined;
  previous: Buffer | undefined;
}

/**
 * Walks a point's trees and yields the entries to restore, parents before children. Names that
 * could escape the target (empty, `.`, `..`, containing `/` or NUL) and duplicate names are
 * refused through `onUnsafe` with their whole subtree.
 */
export async function* planRestore(
  reader: BlobReader,
  rootTree: string,
  filter: RestoreFilter,
  onUnsafe: (path: string, reason: string) => void,
  signal?: AbortSignal,
): AsyncGenerator<PlannedEntry> {
  const include = filter.include?.length ? new ExcludeMatcher(filter.include) : undefined;
  const exclude = new ExcludeMatcher(filter.exclude ?? []);
  // Directories are yielded only when something inside them is selected, so an include filter
  // does not leave a skeleton of empty directories.
  const pendingDirs: PlannedEntry[] = [];

  async function enter(
    treeId: string,
    parent: Buffer,
    depth: number,
    selected: boolean,
    dir: PlannedEntry | undefined,
  ): Promise<Frame> {
    signal?.throwIfAborted();
    const nodes = decodeTree(
      await reader.load(treeId, 'tree', signal),
      `tree ${treeId.slice(0, 12)}`,
    );
    return { nodes, next: 0, parent, depth, selected, dir, previous: undefined };
  }

  // An explicit stack rather than one generator per directory: a value yielded from nested
  // async generators is handed up through every level, a promise per level per entry.
  const filtered = !exclude.empty || include !== undefined;
  const stack = [await enter(rootTree, Buffer.alloc(0), 0, false, undefined)];
  for (let frame = stack[0]; frame; frame = stack[stack.length - 1]) {
    const node = frame.nodes[frame.next];
    if (!node) {
      stack.pop();
      if (frame.dir && pendingDirs[pendingDirs.length - 1] === frame.dir) pendingDirs.pop();
      continue;
    }
    frame.next += 1;
    const { parent } = frame;
    const path = parent.byteLength === 0 ? node.name : Buffer.concat([parent, SLASH, node.name]);
    const reason = unsafeName(node.name, frame.previous);
    frame.previous = node.name;
    if (reason) {
      onUnsafe(`/${path.toString()}`, reason);
      continue;
    }
    const display = filtered ? `/${path.toString()}` : '';
    if (!exclude.empty && exclude.matches(display, node.name.toString())) continue;
    const isSelected =
      frame.selected || include === undefined || include.matches(display, node.name.toString());
    const entry: PlannedEntry = { node, path, depth: frame.depth, parent: frame.dir };
    if (node.type === 'dir' && node.subtree) {
      pendingDirs.push(entry);
      if (isSelected) for (const dir of pendingDirs.splice(0)) yield dir;
      stack.push(await enter(node.subtree, path, frame.depth + 1, isSelected, entry));
    } else if (isSelected) {
      for (const dir of pendingDirs.splice(0)) yield dir;
      yield entry;
    }
  }
}

const SLASH = Buffer.from('/');

function unsafeName(name: Buffer, previous: Buffer | undefined): string | undefined {
  if (name.byteLength === 0) return 'empty name';
  if (name.equals(DOT) || name.equals(DOTDOT))
    return `name '${name.toString()}' would leave its directory`;
  if (name.includes(0x2f)) return "name contains '/'";
  if (name.includes(0)) return 'name contains a NUL byte';
  // Trees are sorted and unique; a repeated name is how a crafted tree would put a file
  // "through" a symlink of the same name.
  if (previous && Buffer.compare(previous, name) >= 0)
    return 'duplicate or unsorted name in its directory';
  return undefined;
}

const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');

/** The error a restore reports for a refused entry. */
export function unsafeEntryError(path: string, reason: string): HoldfastError {
  return new HoldfastError(
    'RESTORE_UNSAFE_ENTRY',
    `Refused to restore ${path}: ${reason}. Nothing was written for it.`,
  );
}
