import { crc32 } from 'node:zlib';
import { HoldfastError } from '../core/index.js';
import type { ByteRange } from './byte-ranges.js';

/** Random access to a disk image or device: reads never go past `size`. */
export interface DiskReader {
  readonly size: number;
  read(offset: number, length: number): Promise<Buffer>;
  /**
   * The ranges that may hold data, in order; everything else reads as zeros and need not be
   * read. Undefined (or absent): the reader cannot tell, read everything.
   */
  dataExtents?(): Promise<readonly ByteRange[] | undefined>;
}

/** One partition, in bytes from the start of the disk. */
export interface Partition {
  /** 1-based as Linux numbers them: MBR primaries 1–4, logicals from 5; GPT entries in order. */
  readonly number: number;
  readonly offset: number;
  readonly size: number;
  /** GPT type GUID (upper case) or MBR type byte as two hex digits. */
  readonly type: string;
  /** What the type is, where known (`linux`, `efi`, `swap`, …). */
  readonly kind: string | undefined;
  /** GPT: the partition's own GUID and name. */
  readonly uuid?: string;
  readonly name?: string;
}

/** A disk's partition table; `scheme: 'none'` when it has none (a bare file system, say). */
export interface PartitionTable {
  readonly scheme: 'mbr' | 'gpt' | 'none';
  readonly partitions: readonly Partition[];
  /** GPT: the disk's GUID. */
  readonly diskUuid?: string;
  /** Damage read around (a GPT primary header replaced by its backup). */
  readonly warnings: readonly string[];
}

const SECTOR = 512;
const GPT_SIGNATURE = 'EFI PART';
const PROTECTIVE = 0xee;
const EXTENDED = new Set([0x05, 0x0f, 0x85]);
/** More than any real disk has; bounds what a hostile table can make us read. */
const MAX_GPT_ENTRIES = 1024;
const MAX_LOGICAL = 128;

const GPT_KINDS: Readonly<Record<string, string>> = {
  '0FC63DAF-8483-4772-8E79-3D69D8477DE4': 'linux',
  'C12A7328-F81F-11D2-BA4B-00A0C93EC93B': 'efi',
  '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F': 'swap',
  'E6D6D379-F507-44C2-A23C-238F2A3DF928': 'lvm',
  '21686148-6449-6E6F-744E-656564454649': 'bios-boot',
  'EBD0A0A2-B9E5-4433-87C0-68B6B72699C7': 'windows-data',
  '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709': 'linux-root-x86-64',
};
const MBR_KINDS: Readonly<Record<number, string>> = {
  0x83: 'linux',
  0x82: 'swap',
  0x8e: 'lvm',
  0xef: 'efi',
  0x07: 'windows-data',
  0x0b: 'fat32',
  0x0c: 'fat32',
};

/**
 * Reads a disk's partition table: GPT (primary header, or the backup at the disk's end when the
 * primary is damaged), else MBR with its chain of logical partitions, else none. Everything
 * read is checked before use — checksums, bounds, overlaps, loops — and damage that cannot be
 * read around is SOURCE_UNREADABLE naming what is wrong (docs/disks.md). 512-byte sectors.
 */
export async function readPartitionTable(disk: DiskReader): Promise<PartitionTable> {
  if (disk.size < SECTOR) return { scheme: 'none', partitions: [], warnings: [] };
  const mbr = await disk.read(0, SECTOR);
  const hasMbr = mbr.readUInt16LE(510) === 0xaa55;
  const entries = hasMbr ? mbrEntries(mbr) : [];
  const gptHeader = disk.size >= 2 * SECTOR ? await disk.read(SECTOR, SECTOR) : undefined;
  const claimsGpt =
    entries.some((e) => e.type === PROTECTIVE) ||
    gptHeader?.subarray(0, 8).toString('latin1') === GPT_SIGNATURE;
  if (claimsGpt) return readGpt(disk);
  if (!hasMbr) return { scheme: 'none', partitions: [], warnings: [] };
  return { scheme: 'mbr', partitions: checked(disk, await readMbr(disk, entries)), warnings: [] };
}

interface MbrEntry {
  readonly slot: number;
  readonly type: number;
  readonly first: number;
  readonly sectors: number;
}

function mbrEntries(sector: Buffer): MbrEntry[] {
  const out: MbrEntry[] = [];
  for (let slot = 0; slot < 4; slot++) {
    const at = 446 + slot * 16;
    const type = sector[at + 4]!;
    const sectors = sector.readUInt32LE(at + 12);
    if (type !== 0 && sectors > 0)
      out.push({ slot, type, first: sector.readUInt32LE(at + 8), sectors });
  }
  return out;
}

async function readMbr(disk: DiskReader, entries: MbrEntry[]): Promise<Partition[]> {
  const partitions: Partition[] = [];
  for (const entry of entries) {
    if (EXTENDED.has(entry.type)) partitions.push(...(await readLogical(disk, entry)));
    else partitions.push(mbrPartition(entry.slot + 1, entry.type, entry.first, entry.sectors));
  }
  return partitions.sort((a, b) => a.number - b.number);
}

/** The chain of extended boot records: each names one logical partition and the next link. */
async function readLogical(disk: DiskReader, extended: MbrEntry): Promise<Partition[]> {
  const out: Partition[] = [];
  const seen = new Set<number>();
  let ebr = extended.first;
  while (out.length < MAX_LOGICAL + 1) {
    if (seen.has(ebr)) throw unreadable(`the chain of logical partitions loops at sector ${ebr}`);
    seen.add(ebr);
    if ((ebr + 1) * SECTOR > disk.size)
      throw unreadable(`a logical partition's boot record (sector ${ebr}) lies past the end`);
    const sector = await disk.read(ebr * SECTOR, SECTOR);
    if (sector.readUInt16LE(510) !== 0xaa55)
      throw unreadable(`the boot record of logical partition ${out.length + 5} is damaged`);
    const [data, next] = mbrEntries(sector);
    if (data !== undefined)
      out.push(mbrPartition(out.length + 5, data.type, ebr + data.first, data.sectors));
    if (next === undefined || !EXTENDED.has(next.type)) return out;
    ebr = extended.first + next.first;
  }
  throw unreadable(`more than ${MAX_LOGICAL} logical partitions`);
}

function mbrPartition(number: number, type: number, first: number, sectors: number): Partition {
  return {
    number,
    offset: first * SECTOR,
    size: sectors * SECTOR,
    type: type.toString(16).padStart(2, '0'),
    kind: MBR_KINDS[type],
  };
}

async function readGpt(disk: DiskReader): Promise<PartitionTable> {
  const lastLba = Math.floor(disk.size / SECTOR) - 1;
  const primary = await gptAt(disk, 1, lastLba);
  if (primary.ok) return primary.table;
  const backup = lastLba > 1 ? await gptAt(disk, lastLba, lastLba) : primary;
  if (!backup.ok)
    throw unreadable(
      `the GPT is damaged: primary header: ${primary.problem}; backup header: ${backup.problem}`,
    );
  return {
    ...backup.table,
    warnings: [`the primary GPT header is damaged (${primary.problem}); read the backup instead`],
  };
}

type GptRead = { ok: true; table: PartitionTable } | { ok: false; problem: string };

async function gptAt(disk: DiskReader, lba: number, lastLba: number): Promise<GptRead> {
  const header = await disk.read(lba * SECTOR, SECTOR);
  if (header.subarray(0, 8).toString('latin1') !== GPT_SIGNATURE)
    return { ok: false, problem: 'no GPT signature' };
  const headerSize = header.readUInt32LE(12);
  if (headerSize < 92 || headerSize > SECTOR)
    return { ok: false, problem: `header size ${headerSize} is out of range` };
  const copy = Buffer.from(header.subarray(0, headerSize));
  const stored = copy.readUInt32LE(16);
  copy.writeUInt32LE(0, 16);
  if (crc32(copy) !== stored) return { ok: false, problem: 'header checksum mismatch' };
  const firstUsable = safeNumber(header.readBigUInt64LE(40));
  const lastUsable = safeNumber(header.readBigUInt64LE(48));
  const entriesLba = safeNumber(header.readBigUInt64LE(72));
  const count = header.readUInt32LE(80);
  const entrySize = header.readUInt32LE(84);
  if (count > MAX_GPT_ENTRIES) return { ok: false, problem: `${count} entries is too many` };
  if (entrySize < 128 || entrySize > 4096 || entrySize % 8 !== 0)
    return { ok: false, problem: `entry size ${entrySize} is invalid` };
  if (firstUsable > lastUsable || lastUsable > lastLba)
    return { ok: false, problem: 'its usable area lies outside the disk' };
  const bytes = count * entrySize;
  if (entriesLba < 1 || entriesLba * SECTOR + bytes > disk.size)
    return { ok: false, problem: 'its entry array lies past the end of the disk' };
  const array = await disk.read(entriesLba * SECTOR, bytes);
  if (crc32(array) !== header.readUInt32LE(88))
    return { ok: false, problem: 'entry array checksum mismatch' };
  const partitions: Partition[] = [];
  for (let i = 0; i < count; i++) {
    const entry = array.subarray(i * entrySize, i * entrySize + 128);
    const type = guid(entry.subarray(0, 16));
    if (type === '00000000-0000-0000-0000-000000000000') continue;
    const first = safeNumber(entry.readBigUInt64LE(32));
    const last = safeNumber(entry.readBigUInt64LE(40));
    if (last < first || first < firstUsable || last > lastUsable)
      throw unreadable(
        `GPT partition ${i + 1} (sectors ${first}–${last}) lies outside the disk's usable area (${firstUsable}–${lastUsable})`,
      );
    partitions.push({
      number: i + 1,
      offset: first * SECTOR,
      size: (last - first + 1) * SECTOR,
      type,
      kind: GPT_KINDS[type],
      uuid: guid(entry.subarray(16, 32)),
      name: utf16Name(entry.subarray(56, 128)),
    });
  }
  return {
    ok: true,
    table: {
      scheme: 'gpt',
      partitions: checked(disk, partitions),
      diskUuid: guid(header.subarray(56, 72)),
      warnings: [],
    },
  };
}

/** Partitions must lie on the disk and not overlap. */
function checked(disk: DiskReader, partitions: Partition[]): Partition[] {
  for (const p of partitions)
    if (p.offset + p.size > disk.size)
      throw unreadable(
        `partition ${p.number} ends at byte ${p.offset + p.size}, past the end of the ${disk.size}-byte disk`,
      );
  const byOffset = [...partitions].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < byOffset.length; i++) {
    const before = byOffset[i - 1]!;
    const p = byOffset[i]!;
    if (p.offset < before.offset + before.size)
      throw unreadable(`partitions ${before.number} and ${p.number} overlap`);
  }
  return partitions;
}

/** GUIDs store their first three fields little-endian. */
function guid(bytes: Buffer): string {
  const hex = (b: Buffer): string => b.toString('hex').toUpperCase();
  const le = (start: number, end: number): string =>
    hex(Buffer.from(bytes.subarray(start, end)).reverse());
  return `${le(0, 4)}-${le(4, 6)}-${le(6, 8)}-${hex(bytes.subarray(8, 10))}-${hex(bytes.subarray(10, 16))}`;
}

function utf16Name(bytes: Buffer): string {
  const text = bytes.toString('utf16le');
  const end = text.indexOf('\u0000');
  return end === -1 ? text : text.slice(0, end);
}

function safeNumber(value: bigint): number {
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(value);
}

function unreadable(what: string): HoldfastError {
  return new HoldfastError('SOURCE_UNREADABLE', `Cannot read the partition table: ${what}.`);
}
