import { unreadable } from './damage.js';
import { I_BLOCK_SIZE, type Inode } from './inode.js';

const XATTR_MAGIC = 0xea020000;
const ENTRY_HEADER = 16;
/** The "system." attribute namespace; inline data lives in "system.data". */
const SYSTEM_INDEX = 7;
const DATA_NAME = Buffer.from('data');

/**
 * The continuation of an inode's inline data: the value of its "system.data" attribute in the
 * inode's own attribute area (empty when there is none). Every entry is bounds-checked against
 * the area; a value stored in another inode or block is refused.
 */
export function inlineDataTail(inode: Inode): Buffer {
  const area = inode.xattrArea;
  if (area.length < 4 || area.readUInt32LE(0) !== XATTR_MAGIC) return Buffer.alloc(0);
  // Value offsets count from the first entry, just after the 4-byte magic.
  const values = area.subarray(4);
  let at = 0;
  while (at + 4 <= values.length && values.readUInt32LE(at) !== 0) {
    if (at + ENTRY_HEADER > values.length) break;
    const nameLength = values[at]!;
    const nameIndex = values[at + 1]!;
    const valueOffset = values.readUInt16LE(at + 2);
    const valueInode = values.readUInt32LE(at + 4);
    const valueSize = values.readUInt32LE(at + 8);
    const entrySize = (ENTRY_HEADER + nameLength + 3) & ~3;
    if (at + entrySize > values.length)
      throw unreadable(`inode ${inode.number}'s attribute entries run past the inode`);
    const name = values.subarray(at + ENTRY_HEADER, at + ENTRY_HEADER + nameLength);
    if (nameIndex === SYSTEM_INDEX && name.equals(DATA_NAME)) {
      if (valueInode !== 0 || valueOffset + valueSize > values.length)
        throw unreadable(`inode ${inode.number}'s inline data lies outside the inode`);
      return values.subarray(valueOffset, valueOffset + valueSize);
    }
    at += entrySize;
  }
  return Buffer.alloc(0);
}

/** The whole content of an inline-data file or symlink: i_block, then the attribute's value. */
export function inlineContent(inode: Inode): Buffer {
  const tail = inlineDataTail(inode);
  if (inode.size > I_BLOCK_SIZE + tail.length)
    throw unreadable(
      `inode ${inode.number} holds ${I_BLOCK_SIZE + tail.length} bytes of inline data but claims ${inode.size}`,
    );
  return Buffer.concat([inode.iBlock, tail]).subarray(0, inode.size);
}
