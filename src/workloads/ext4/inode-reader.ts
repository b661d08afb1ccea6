import type { BlockMap } from './block-map.js';
import type { BlockReader } from './block-reader.js';
import { unreadable } from './damage.js';
import { parseDirectoryBlock, type DirectoryRecord } from './directory.js';
import { ExtentTree } from './extents.js';
import { contentPieces, readContent, type ContentPiece } from './file-content.js';
import { GroupDescriptors } from './group-descriptors.js';
import { IndirectBlocks } from './indirect-blocks.js';
import { inlineContent, inlineDataTail } from './inline-data.js';
import { I_BLOCK_SIZE, INODE_FLAGS, parseInode, type Inode } from './inode.js';
import type { Superblock } from './superblock.js';

/** Symlink targets longer than PATH_MAX − 1 do not exist. */
const MAX_LINK_TARGET = 4095;

/**
 * Reads inodes and what they hold — file content, directory records, symlink targets — from
 * whichever store the inode uses: inline data, an extent tree or indirect block pointers.
 */
export class InodeReader {
  private readonly groups: GroupDescriptors;

  constructor(
    private readonly sb: Superblock,
    private readonly blocks: BlockReader,
  ) {
    this.groups = new GroupDescriptors(sb, blocks);
  }

  /** Inode `number`, read from its group's inode table and checked. */
  async inode(number: number): Promise<Inode> {
    const { sb } = this;
    if (!Number.isSafeInteger(number) || number < 1 || number > sb.inodesCount)
      throw unreadable(`inode number ${number} is out of range (1–${sb.inodesCount})`);
    const group = Math.floor((number - 1) / sb.inodesPerGroup);
    const index = (number - 1) % sb.inodesPerGroup;
    const descriptor = await this.groups.get(group);
    if (descriptor.inodesUninitialized || index >= sb.inodesPerGroup - descriptor.unusedInodes)
      throw unreadable(
        `inode ${number} lies in the never-used part of group ${group}'s inode table`,
      );
    const byte = index * sb.inodeSize;
    const block = await this.blocks.metadata(
      descriptor.inodeTable + Math.floor(byte / sb.blockSize),
      1,
      () => `the inode table of group ${group}`,
    );
    const at = byte % sb.blockSize;
    // A copy, so that inodes kept by callers do not pin cached chunks.
    return parseInode(Buffer.from(block.subarray(at, at + sb.inodeSize)), number, sb);
  }

  /** A regular file's content, in order, as data and zero pieces. */
  async *content(inode: Inode): AsyncGenerator<ContentPiece> {
    if (inode.size === 0) return;
    if (this.isInline(inode)) {
      yield { kind: 'data', offset: 0, bytes: inlineContent(inode) };
      return;
    }
    const range = { start: 0, end: inode.size, inode: inode.number };
    yield* contentPieces(this.blockMap(inode), this.blocks, range);
  }

  /** Bytes `[start, end)` of a regular file (`end` at most its size), zeros in holes. */
  async read(inode: Inode, start: number, end: number): Promise<Buffer> {
    if (this.isInline(inode)) return Buffer.from(inlineContent(inode).subarray(start, end));
    return readContent(this.blockMap(inode), this.blocks, { start, end, inode: inode.number });
  }

  /** A symlink's target, as bytes. */
  async linkTarget(inode: Inode): Promise<Buffer> {
    const target = await this.linkBytes(inode);
    if (target.includes(0))
      throw unreadable(`symlink inode ${inode.number}'s target has a NUL byte`);
    return target;
  }

  /** The records of a directory inode, without its own `.` and `..`, in on-disk order. */
  async *records(dir: Inode): AsyncGenerator<DirectoryRecord> {
    const { blockSize } = this.sb;
    const options = { fileType: this.sb.uses.fileType, blockSize };
    const where = (what: string) => () => `directory inode ${dir.number}, ${what}`;
    if (this.isInline(dir)) {
      // The first four bytes name the parent; the rest of i_block and the attribute hold entries.
      const head = dir.iBlock.subarray(4, I_BLOCK_SIZE);
      yield* parseDirectoryBlock(head, options, where('inline entries'));
      const tail = inlineDataTail(dir);
      if (tail.length > 0) yield* parseDirectoryBlock(tail, options, where('inline attribute'));
      return;
    }
    if (dir.size > this.sb.blocksCount * blockSize || dir.size % blockSize !== 0)
      throw unreadable(`directory inode ${dir.number} has an impossible size of ${dir.size} bytes`);
    const range = { start: 0, end: dir.size, inode: dir.number };
    for await (const piece of contentPieces(this.blockMap(dir), this.blocks, range, true)) {
      if (piece.kind === 'zeros') continue;
      for (let at = 0; at < piece.bytes.length; at += blockSize) {
        const logical = (piece.offset + at) / blockSize;
        const block = piece.bytes.subarray(at, at + blockSize);
        const records = parseDirectoryBlock(block, options, where(`block ${logical}`));
        // The first block opens with "." and ".."; any other record so named is kept, for the
        // caller to refuse.
        yield* logical === 0 ? records.filter((r, i) => i >= 2 || !isDotOrDotDot(r.name)) : records;
      }
    }
  }

  private async linkBytes(inode: Inode): Promise<Buffer> {
    if (inode.size > Math.min(MAX_LINK_TARGET, this.sb.blockSize))
      throw unreadable(`symlink inode ${inode.number} claims a ${inode.size}-byte target`);
    if (this.isInline(inode)) return Buffer.from(inlineContent(inode));
    // Short targets live in i_block itself ("fast" symlinks), as the kernel decides by size.
    if (inode.size < I_BLOCK_SIZE) return Buffer.from(inode.iBlock.subarray(0, inode.size));
    const range = { start: 0, end: inode.size, inode: inode.number };
    return readContent(this.blockMap(inode), this.blocks, range);
  }

  private isInline(inode: Inode): boolean {
    if ((inode.flags & INODE_FLAGS.inlineData) === 0) return false;
    if (!this.sb.uses.inlineData)
      throw unreadable(`inode ${inode.number} claims inline data, a feature the file system lacks`);
    return true;
  }

  private blockMap(inode: Inode): BlockMap {
    if ((inode.flags & INODE_FLAGS.encrypted) !== 0)
      throw unreadable(`inode ${inode.number} is encrypted; its content cannot be read`);
    return (inode.flags & INODE_FLAGS.extents) !== 0
      ? new ExtentTree(inode.iBlock, this.blocks, inode.number)
      : new IndirectBlocks(inode.iBlock, this.blocks, inode.number);
  }
}

function isDotOrDotDot(name: Buffer): boolean {
  return name[0] === 0x2e && (name.length === 1 || (name.length === 2 && name[1] === 0x2e));
}
