import type { BlockReader } from './block-reader.js';
import { MAX_LOGICAL_BLOCKS, type BlockMap, type BlockRun } from './block-map.js';
import { join64, unreadable } from './damage.js';

const MAGIC = 0xf30a;
const HEADER_SIZE = 12;
const ENTRY_SIZE = 12;
/** Deeper than any tree the format allows (the kernel stops at 5). */
const MAX_DEPTH = 5;
/** Lengths above this mark an extent allocated but not written: it reads as zeros. */
const MAX_WRITTEN_LENGTH = 32768;

interface Node {
  readonly raw: Buffer;
  readonly depth: number;
  readonly entries: number;
  readonly where: string;
}

/**
 * The extent tree of an ext4 file: a root of up to four entries in the inode, index nodes, and
 * leaves of extents (logical start, length, disk start). Each lookup walks down from the root,
 * checking every node it reads: magic, entry counts against the node's room, a depth one less
 * than its parent's (so a lookup takes at most six reads and cannot loop), keys sorted and
 * inside the range the parent gives the node, and extents inside the file system.
 */
export class ExtentTree implements BlockMap {
  constructor(
    private readonly iBlock: Buffer,
    private readonly blocks: BlockReader,
    private readonly inode: number,
  ) {}

  async run(logical: number): Promise<BlockRun> {
    let node = this.node(this.iBlock, undefined, `inode ${this.inode}'s extent tree root`);
    let low = 0;
    let high = MAX_LOGICAL_BLOCKS;
    while (node.depth > 0) {
      const keys = this.sortedKeys(node, low, high);
      let index = keys.length - 1;
      while (index >= 0 && keys[index]! > logical) index--;
      if (index < 0) return zeros(logical, (keys[0] ?? high) - logical);
      const at = HEADER_SIZE + index * ENTRY_SIZE;
      const child = join64(node.raw.readUInt32LE(at + 4), node.raw.readUInt16LE(at + 8));
      const where = `inode ${this.inode}'s extent tree node at block ${child}`;
      const raw = await this.blocks.metadata(child, 1, () => where);
      low = keys[index]!;
      high = keys[index + 1] ?? high;
      node = this.node(raw, node.depth - 1, where);
    }
    return this.inLeaf(node, logical, low, high);
  }

  private node(raw: Buffer, depth: number | undefined, where: string): Node {
    if (raw.readUInt16LE(0) !== MAGIC) throw unreadable(`${where} has no extent header`);
    const entries = raw.readUInt16LE(2);
    const max = raw.readUInt16LE(4);
    const actualDepth = raw.readUInt16LE(6);
    if (max > Math.floor((raw.length - HEADER_SIZE) / ENTRY_SIZE) || entries > max)
      throw unreadable(`${where} claims ${entries} of ${max} entries, more than it has room for`);
    if (depth === undefined ? actualDepth > MAX_DEPTH : actualDepth !== depth)
      throw unreadable(
        `${where} has depth ${actualDepth}, expected ${depth ?? `at most ${MAX_DEPTH}`}`,
      );
    return { raw, depth: actualDepth, entries, where };
  }

  /** An index node's keys, which must rise strictly and lie in `[low, high)`. */
  private sortedKeys(node: Node, low: number, high: number): number[] {
    const keys: number[] = [];
    for (let i = 0; i < node.entries; i++) {
      const key = node.raw.readUInt32LE(HEADER_SIZE + i * ENTRY_SIZE);
      if (key < low || key >= high || (i > 0 && key <= keys[i - 1]!))
        throw unreadable(`${node.where}: index entry ${i} (block ${key}) is out of order`);
      keys.push(key);
    }
    return keys;
  }

  /** The run at `logical` in a leaf whose extents must be sorted, disjoint and in `[low, high)`. */
  private inLeaf(node: Node, logical: number, low: number, high: number): BlockRun {
    let end = low;
    let found: BlockRun | undefined;
    for (let i = 0; i < node.entries; i++) {
      const at = HEADER_SIZE + i * ENTRY_SIZE;
      const start = node.raw.readUInt32LE(at);
      const rawLength = node.raw.readUInt16LE(at + 4);
      const unwritten = rawLength > MAX_WRITTEN_LENGTH;
      const length = unwritten ? rawLength - MAX_WRITTEN_LENGTH : rawLength;
      const physical = join64(node.raw.readUInt32LE(at + 8), node.raw.readUInt16LE(at + 6));
      if (length === 0 || start < end || start + length > high)
        throw unreadable(
          `${node.where}: extent ${i} (blocks ${start}+${length}) overlaps or is out of order`,
        );
      this.blocks.checkRange(physical, length, () => `${node.where}: extent ${i}`);
      end = start + length;
      if (found !== undefined) continue;
      if (logical < start) found = zeros(logical, start - logical);
      else if (logical < end) {
        const skip = logical - start;
        found = unwritten
          ? zeros(logical, length - skip)
          : { kind: 'data', logical, length: length - skip, physical: physical + skip };
      }
    }
    return found ?? zeros(logical, high - logical);
  }
}

function zeros(logical: number, length: number): BlockRun {
  return { kind: 'zeros', logical, length };
}
