import { createHash } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';

/**
 * The hash of every block of a disk as last copied into its mirror: what lets a capture copy
 * and a backup read only the blocks that changed (docs/disks.md "Changed blocks"). Stored beside
 * the mirror; a map that does not match the disk's size or block size is ignored (everything
 * counts as changed).
 */
export interface BlockMap {
  readonly size: number;
  readonly blockSize: number;
  /** 32 bytes per block. */
  readonly hashes: Buffer;
}

// Version 2: maps of mirrors holding the guest's raw view (version 1 maps are ignored).
const MAGIC = Buffer.from('HFBLKMAP2\n');
const HASH = 32;

export function hashBlock(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest();
}

export function emptyBlockMap(size: number, blockSize: number): BlockMap {
  return { size, blockSize, hashes: Buffer.alloc(Math.ceil(size / blockSize) * HASH) };
}

export function blockHash(map: BlockMap, block: number): Buffer {
  return map.hashes.subarray(block * HASH, (block + 1) * HASH);
}

/** The stored map, or undefined when missing, damaged or made for another size. */
export async function loadBlockMap(
  path: string,
  size: number,
  blockSize: number,
): Promise<BlockMap | undefined> {
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch {
    return undefined;
  }
  const head = MAGIC.length;
  if (data.length < head + 16 || !data.subarray(0, head).equals(MAGIC)) return undefined;
  const storedSize = Number(data.readBigUInt64LE(head));
  const storedBlock = data.readUInt32LE(head + 8);
  const hashes = data.subarray(head + 16);
  const sum = hashes.subarray(hashes.length - HASH);
  const body = hashes.subarray(0, hashes.length - HASH);
  if (
    storedSize !== size ||
    storedBlock !== blockSize ||
    body.length !== Math.ceil(size / blockSize) * HASH ||
    !hashBlock(body).equals(sum)
  )
    return undefined;
  return { size, blockSize, hashes: Buffer.from(body) };
}

/** Writes the map atomically (temporary file, then rename). */
export async function saveBlockMap(path: string, map: BlockMap): Promise<void> {
  const header = Buffer.alloc(16);
  header.writeBigUInt64LE(BigInt(map.size), 0);
  header.writeUInt32LE(map.blockSize, 8);
  const temporary = `${path}.tmp`;
  await writeFile(temporary, Buffer.concat([MAGIC, header, map.hashes, hashBlock(map.hashes)]));
  await rename(temporary, path);
}
