import type { BlockReader } from './block-reader.js';
import { MAX_LOGICAL_BLOCKS, type BlockMap, type BlockRun } from './block-map.js';

const DIRECT = 12;

/**
 * The block map of ext2/ext3 files (and ext4 files without extents): twelve direct pointers,
 * then one single, one double and one triple indirect block. A zero pointer is a hole covering
 * everything below it. The depth is fixed by the logical block, so no pointer can make a loop.
 */
export class IndirectBlocks implements BlockMap {
  private readonly perBlock: number;

  constructor(
    private readonly iBlock: Buffer,
    private readonly blocks: BlockReader,
    private readonly inode: number,
  ) {
    this.perBlock = blocks.blockSize / 4;
  }

  async run(logical: number): Promise<BlockRun> {
    if (logical < DIRECT) return this.runIn(this.iBlock, logical, DIRECT - logical, logical);
    let within = logical - DIRECT;
    let span = this.perBlock;
    for (let level = 0; level < 3; level++) {
      if (within < span)
        return this.descend(this.iBlock.readUInt32LE((DIRECT + level) * 4), within, span, logical);
      within -= span;
      span *= this.perBlock;
    }
    return { kind: 'zeros', logical, length: MAX_LOGICAL_BLOCKS - logical };
  }

  /** Walks down from an indirect block covering `span` blocks to the pointer of `within`. */
  private async descend(
    pointer: number,
    within: number,
    span: number,
    logical: number,
  ): Promise<BlockRun> {
    let block = pointer;
    let rest = within;
    let covered = span;
    for (;;) {
      if (block === 0) return this.zeros(logical, covered - rest);
      const pointers = await this.blocks.metadata(
        block,
        1,
        () => `an indirect block of inode ${this.inode}`,
      );
      covered /= this.perBlock;
      const index = Math.floor(rest / covered);
      rest %= covered;
      if (covered === 1) return this.runIn(pointers, index, this.perBlock - index, logical);
      block = pointers.readUInt32LE(index * 4);
    }
  }

  /**
   * The run at pointer `index` of a pointer array: consecutive disk blocks, or consecutive zero
   * pointers, up to `available` pointers.
   */
  private runIn(pointers: Buffer, index: number, available: number, logical: number): BlockRun {
    available = Math.min(available, MAX_LOGICAL_BLOCKS - logical);
    const first = pointers.readUInt32LE(index * 4);
    let length = 1;
    while (length < available) {
      const next = pointers.readUInt32LE((index + length) * 4);
      if (first === 0 ? next !== 0 : next !== first + length) break;
      length++;
    }
    if (first === 0) return this.zeros(logical, length);
    this.blocks.checkRange(first, length, () => `inode ${this.inode}'s block ${logical}`);
    return { kind: 'data', logical, length, physical: first };
  }

  private zeros(logical: number, length: number): BlockRun {
    return { kind: 'zeros', logical, length: Math.min(length, MAX_LOGICAL_BLOCKS - logical) };
  }
}
