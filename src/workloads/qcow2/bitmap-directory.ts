import type { DiskReader } from '../partition-table.js';
import type { Qcow2Header } from './header.js';
import { readU64, unreadable } from './unreadable.js';

/** qemu's limits: at most 65535 bitmaps, in a directory of at most 64 MiB. */
const MAX_BITMAPS = 65535;
const MAX_DIRECTORY_BYTES = 64 * 1024 * 1024;
const ENTRY_FIXED = 24;
const MAX_NAME = 1023;
const DIRTY_TRACKING = 1;
const MIN_GRANULARITY_BITS = 9;
const MAX_GRANULARITY_BITS = 31;
const IN_USE = 1;
const AUTO = 2;
const EXTRA_DATA_COMPATIBLE = 4;

/** One entry of the bitmap directory, checked. */
export interface BitmapEntry {
  readonly name: string;
  readonly granularityBits: number;
  readonly tableOffset: number;
  readonly tableEntries: number;
  readonly inUse: boolean;
  readonly auto: boolean;
  /** Extra data the format says a reader that does not know it must not use the bitmap with. */
  readonly unknownExtraData: boolean;
}

/**
 * Reads the bitmap directory the bitmaps extension points at: every field is checked (offsets
 * aligned and inside the file, sizes within qemu's limits, table sizes consistent with the
 * virtual size and granularity) before use. An image without valid bitmaps has none.
 */
export async function readBitmapDirectory(
  file: DiskReader,
  header: Qcow2Header,
  image: string,
): Promise<BitmapEntry[]> {
  const extension = header.bitmaps;
  if (extension === undefined) return [];
  const { count, directorySize, directoryOffset } = extension;
  const damaged = (what: string) => unreadable(image, `its bitmap directory ${what}`);
  if (count === 0 || count > MAX_BITMAPS) throw damaged(`claims ${count} bitmaps`);
  if (directorySize < count * ENTRY_FIXED || directorySize > MAX_DIRECTORY_BYTES)
    throw damaged(`size ${directorySize} does not fit ${count} bitmaps`);
  if (directoryOffset % header.clusterSize !== 0 || directoryOffset < header.clusterSize)
    throw damaged(`offset ${directoryOffset} is not a cluster after the header`);
  if (directoryOffset + directorySize > file.size)
    throw damaged(`lies past the end of the ${file.size}-byte file`);
  const directory = await file.read(directoryOffset, directorySize);
  const entries: BitmapEntry[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    const { entry, next } = readEntry(directory, at, header, file.size, (what) =>
      damaged(`entry ${i} ${what}`),
    );
    entries.push(entry);
    at = next;
  }
  return entries;
}

function readEntry(
  directory: Buffer,
  at: number,
  header: Qcow2Header,
  fileSize: number,
  damaged: (what: string) => Error,
): { entry: BitmapEntry; next: number } {
  if (at + ENTRY_FIXED > directory.length) throw damaged('runs past the directory');
  const tableOffset = readU64(directory, at);
  const tableEntries = directory.readUInt32BE(at + 8);
  const flags = directory.readUInt32BE(at + 12);
  const type = directory[at + 16]!;
  const granularityBits = directory[at + 17]!;
  const nameSize = directory.readUInt16BE(at + 18);
  const extraSize = directory.readUInt32BE(at + 20);
  if ((flags & ~(IN_USE | AUTO | EXTRA_DATA_COMPATIBLE)) !== 0)
    throw damaged(`has unknown flags 0x${flags.toString(16)}`);
  if (type !== DIRTY_TRACKING) throw damaged(`has type ${type}, not a dirty tracking bitmap`);
  if (granularityBits < MIN_GRANULARITY_BITS || granularityBits > MAX_GRANULARITY_BITS)
    throw damaged(`has granularity bits ${granularityBits}, outside 9–31`);
  if (nameSize === 0 || nameSize > MAX_NAME) throw damaged(`has a name of ${nameSize} bytes`);
  const nameAt = at + ENTRY_FIXED + extraSize;
  const end = nameAt + nameSize;
  if (end > directory.length) throw damaged('runs past the directory');
  const bitsPerCluster = header.clusterSize * 8;
  const expected = Math.ceil(Math.ceil(header.size / 2 ** granularityBits) / bitsPerCluster);
  if (tableEntries !== expected)
    throw damaged(`has a table of ${tableEntries} entries, not the ${expected} the disk needs`);
  if (tableOffset % header.clusterSize !== 0 || tableOffset < header.clusterSize)
    throw damaged(`has its table at ${tableOffset}, not a cluster after the header`);
  if (tableOffset + tableEntries * 8 > fileSize)
    throw damaged(`has its table past the end of the ${fileSize}-byte file`);
  const entry: BitmapEntry = {
    // Kept as stored, so that it can be looked up; messages quote it with JSON.stringify.
    name: directory.subarray(nameAt, end).toString('utf8'),
    granularityBits,
    tableOffset,
    tableEntries,
    inUse: (flags & IN_USE) !== 0,
    auto: (flags & AUTO) !== 0,
    unknownExtraData: extraSize > 0 && (flags & EXTRA_DATA_COMPATIBLE) === 0,
  };
  return { entry, next: Math.ceil(end / 8) * 8 };
}
