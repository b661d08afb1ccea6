import { crc32 } from 'node:zlib';
import type { DiskReader } from './partition-table.js';

const SECTOR = 512;

/** A disk image held in memory. */
export function memoryDisk(image: Buffer): DiskReader {
  return {
    size: image.length,
    read: async (offset, length) => {
      if (offset < 0 || offset + length > image.length) throw new Error('read past the end');
      return Buffer.from(image.subarray(offset, offset + length));
    },
  };
}

/** `length` bytes of a cheap, seeded, non-repeating pattern (nothing in it is zero for long). */
export function patternBytes(length: number, seed: number): Buffer {
  const data = Buffer.alloc(length);
  for (let i = 0; i + 4 <= length; i += 4) data.writeUInt32LE((i * 2654435761 + seed) >>> 0, i);
  return data;
}

/** Writes an MBR partition entry (sector counts and numbers in sectors). */
export function mbrEntry(sector: Buffer, slot: number, type: number, first: number, count: number) {
  const at = 446 + slot * 16;
  sector[at + 4] = type;
  sector.writeUInt32LE(first, at + 8);
  sector.writeUInt32LE(count, at + 12);
  sector.writeUInt16LE(0xaa55, 510);
}

/** A GPT partition to write. */
export interface GptPartitionSpec {
  readonly type: string;
  readonly uuid: string;
  readonly first: number;
  readonly last: number;
  readonly name: string;
}

/**
 * A disk image of `sectors` sectors with a protective MBR and a GPT (primary and backup, with
 * correct checksums) of 128 entries of 128 bytes, as partitioning tools write it.
 */
export function gptImage(sectors: number, partitions: readonly GptPartitionSpec[]): Buffer {
  const image = Buffer.alloc(sectors * SECTOR);
  mbrEntry(image, 0, 0xee, 1, Math.min(sectors - 1, 0xffffffff));
  const entries = Buffer.alloc(128 * 128);
  partitions.forEach((p, i) => {
    const e = entries.subarray(i * 128, (i + 1) * 128);
    guidBytes(p.type).copy(e, 0);
    guidBytes(p.uuid).copy(e, 16);
    e.writeBigUInt64LE(BigInt(p.first), 32);
    e.writeBigUInt64LE(BigInt(p.last), 40);
    Buffer.from(p.name, 'utf16le').copy(e, 56);
  });
  const last = sectors - 1;
  const entriesCrc = crc32(entries);
  const header = (self: number, other: number, entriesAt: number): Buffer => {
    const h = Buffer.alloc(SECTOR);
    h.write('EFI PART', 0, 'latin1');
    h.writeUInt32LE(0x00010000, 8);
    h.writeUInt32LE(92, 12);
    h.writeBigUInt64LE(BigInt(self), 24);
    h.writeBigUInt64LE(BigInt(other), 32);
    h.writeBigUInt64LE(34n, 40);
    h.writeBigUInt64LE(BigInt(last - 33), 48);
    guidBytes('5A3C1B2D-0000-4000-8000-00000000D15C').copy(h, 56);
    h.writeBigUInt64LE(BigInt(entriesAt), 72);
    h.writeUInt32LE(128, 80);
    h.writeUInt32LE(128, 84);
    h.writeUInt32LE(entriesCrc, 88);
    h.writeUInt32LE(crc32(h.subarray(0, 92)), 16);
    return h;
  };
  header(1, last, 2).copy(image, SECTOR);
  entries.copy(image, 2 * SECTOR);
  entries.copy(image, (last - 32) * SECTOR);
  header(last, 1, last - 32).copy(image, last * SECTOR);
  return image;
}

/** The on-disk bytes of a GUID (first three fields little-endian). */
export function guidBytes(text: string): Buffer {
  const hex = text.replace(/-/g, '');
  const b = Buffer.from(hex, 'hex');
  b.subarray(0, 4).reverse();
  b.subarray(4, 6).reverse();
  b.subarray(6, 8).reverse();
  return b;
}
