import { unreadable } from './damage.js';

/** One name in a directory: the inode it names and its bytes (names are bytes, not text). */
export interface DirectoryRecord {
  readonly inode: number;
  readonly name: Buffer;
}

const HEADER = 8;
/** Names are at most 255 bytes (the limit the record's one-byte length gives with filetype). */
export const MAX_NAME = 255;
/** The smallest record: the header and a one-byte name, rounded to four bytes. */
const MIN_RECORD = 12;

/**
 * The records of one directory block (or one area of an inline directory). Each record's length
 * must be a multiple of four, hold its header and name, and end inside the block; a zero or
 * overlong length is damage, never a reason to loop or read past the block. Records with inode
 * 0 are unused space — including the tail that carries a checksum and the nodes of an htree
 * index, which look like one empty record — and are left out.
 */
export function parseDirectoryBlock(
  block: Buffer,
  options: { readonly fileType: boolean; readonly blockSize: number },
  where: () => string,
): DirectoryRecord[] {
  const records: DirectoryRecord[] = [];
  let at = 0;
  while (at < block.length) {
    if (at + HEADER > block.length) throw unreadable(`${where()}: a record is cut off at ${at}`);
    const inode = block.readUInt32LE(at);
    const length = recordLength(block.readUInt16LE(at + 4), options.blockSize);
    // Without the filetype feature the name length is 16 bits; with it, the high byte is the type.
    const nameLength = options.fileType ? block[at + 6]! : block.readUInt16LE(at + 6);
    if (length < MIN_RECORD || length % 4 !== 0 || at + length > block.length)
      throw unreadable(`${where()}: the record at ${at} has an invalid length ${length}`);
    if (HEADER + nameLength > length || nameLength > MAX_NAME)
      throw unreadable(`${where()}: the name at ${at} (${nameLength} bytes) overruns its record`);
    if (inode !== 0) {
      if (nameLength === 0) throw unreadable(`${where()}: the record at ${at} has an empty name`);
      records.push({
        inode,
        name: Buffer.from(block.subarray(at + HEADER, at + HEADER + nameLength)),
      });
    }
    at += length;
  }
  return records;
}

/** 64 KiB blocks need 17 bits of record length: the low two (always 0) bits carry the top. */
function recordLength(raw: number, blockSize: number): number {
  if (blockSize < 65536) return raw;
  if (raw === 0xffff || raw === 0) return 65536;
  return (raw & 0xfffc) | ((raw & 3) << 16);
}
