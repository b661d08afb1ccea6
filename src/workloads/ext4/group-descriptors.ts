import type { BlockReader } from './block-reader.js';
import { join64, unreadable } from './damage.js';
import type { Superblock } from './superblock.js';

/** What this reader needs of a block group: where its inodes are, and which are in use. */
export interface GroupDescriptor {
  readonly inodeTable: number;
  /** The group's inode table was never initialized: none of its inodes is in use. */
  readonly inodesUninitialized: boolean;
  /** Inodes at the end of the table never used (maintained with group checksums). */
  readonly unusedInodes: number;
}

const INODE_UNINIT = 0x1;

/** The group descriptor table, read one descriptor block at a time as groups are needed. */
export class GroupDescriptors {
  private readonly parsed = new Map<number, GroupDescriptor>();
  private readonly perBlock: number;
  private readonly inodeTableBlocks: number;

  constructor(
    private readonly sb: Superblock,
    private readonly blocks: BlockReader,
  ) {
    this.perBlock = sb.blockSize / sb.descriptorSize;
    this.inodeTableBlocks = Math.ceil((sb.inodesPerGroup * sb.inodeSize) / sb.blockSize);
  }

  /** The descriptor of `group`, checked: its inode table must lie inside the file system. */
  async get(group: number): Promise<GroupDescriptor> {
    const known = this.parsed.get(group);
    if (known !== undefined) return known;
    if (group < 0 || group >= this.sb.groupCount)
      throw unreadable(`block group ${group} does not exist`);
    const index = Math.floor(group / this.perBlock);
    const block = await this.blocks.metadata(
      this.descriptorBlock(index),
      1,
      () => `group descriptor block ${index}`,
    );
    const at = (group % this.perBlock) * this.sb.descriptorSize;
    const raw = block.subarray(at, at + this.sb.descriptorSize);
    const wide = this.sb.uses.is64bit;
    const inodeTable = join64(raw.readUInt32LE(0x8), wide ? raw.readUInt32LE(0x28) : 0);
    if (inodeTable <= this.sb.superblockBlock)
      throw unreadable(`group ${group}'s inode table is at block ${inodeTable}`);
    this.blocks.checkRange(inodeTable, this.inodeTableBlocks, () => `group ${group}'s inode table`);
    const unusedInodes = this.sb.uses.groupChecksums
      ? raw.readUInt16LE(0x1c) + (wide ? raw.readUInt16LE(0x32) * 0x10000 : 0)
      : 0;
    if (unusedInodes > this.sb.inodesPerGroup)
      throw unreadable(`group ${group} claims ${unusedInodes} unused inodes`);
    const descriptor: GroupDescriptor = {
      inodeTable,
      inodesUninitialized:
        this.sb.uses.groupChecksums && (raw.readUInt16LE(0x12) & INODE_UNINIT) !== 0,
      unusedInodes,
    };
    this.parsed.set(group, descriptor);
    return descriptor;
  }

  /**
   * Where descriptor block `index` lives: right after the superblock, or with meta_bg (past
   * the first meta groups) in the first block of its own meta group, after that group's backup
   * superblock if it has one.
   */
  private descriptorBlock(index: number): number {
    if (index < this.sb.firstMetaBlockGroup) return this.sb.superblockBlock + 1 + index;
    const group = index * this.perBlock;
    const first = this.sb.firstDataBlock + group * this.sb.blocksPerGroup;
    // With 1 KiB blocks and bigalloc the first data block is 0 yet the superblock is block 1.
    const skip = (this.hasSuperblock(group) ? 1 : 0) + (first < this.sb.superblockBlock ? 1 : 0);
    return first + skip;
  }

  private hasSuperblock(group: number): boolean {
    if (group === 0) return true;
    if (this.sb.uses.sparseSuper2) return this.sb.backupGroups.includes(group);
    if (!this.sb.uses.sparseSuper || group === 1) return true;
    return [3, 5, 7].some((base) => isPowerOf(group, base));
  }
}

function isPowerOf(n: number, base: number): boolean {
  let power = base;
  while (power < n) power *= base;
  return power === n;
}
