import type { DiskReader } from '../partition-table.js';
import {
  printable,
  readHeaderExtensions,
  type BitmapsExtension,
  type HeaderExtensions,
} from './header-extensions.js';
import { readU64, unreadable } from './unreadable.js';

/** The first four bytes of every qcow2 image. */
export const QCOW2_MAGIC = Buffer.from('QFI\xfb', 'latin1');

/** Cluster sizes from 512 bytes to 2 MiB, the range qemu creates and the format allows. */
export const MIN_CLUSTER_BITS = 9;
export const MAX_CLUSTER_BITS = 21;
const V2_HEADER_LENGTH = 72;
const V3_MIN_HEADER_LENGTH = 104;
/** qemu's own limit on an L1 table; it also bounds what a hostile header can make us allocate. */
export const MAX_L1_BYTES = 32 * 1024 * 1024;
const MAX_BACKING_NAME = 1023;

/** Incompatible feature bits this reader knows (qcow2 v3). */
const DIRTY = 0;
const CORRUPT = 1;
const EXTERNAL_DATA = 2;
const COMPRESSION_TYPE = 3;
const EXTENDED_L2 = 4;
const KNOWN_INCOMPATIBLE = [DIRTY, CORRUPT, EXTERNAL_DATA, COMPRESSION_TYPE, EXTENDED_L2];
/** Autoclear bit 0: the bitmaps extension is consistent with the image. */
const AUTOCLEAR_BITMAPS = 0;

/** How compressed clusters are compressed. */
export type Qcow2Compression = 'deflate' | 'zstd';
const COMPRESSION_TYPES: readonly Qcow2Compression[] = ['deflate', 'zstd'];

/** The checked header of a qcow2 image: what reading its guest data needs. */
export interface Qcow2Header {
  readonly version: 2 | 3;
  readonly clusterBits: number;
  readonly clusterSize: number;
  /** The guest-visible (virtual) size in bytes. */
  readonly size: number;
  /** L1 entries the virtual size needs; the table may hold more (qemu's VM state), never read. */
  readonly l1Entries: number;
  readonly l1TableOffset: number;
  readonly compression: Qcow2Compression;
  /** Closed uncleanly with lazy refcounts: refcounts may be stale, which reading never uses. */
  readonly dirty: boolean;
  /** Internal snapshots; only the active state is read. */
  readonly snapshotCount: number;
  /** The persistent bitmaps' directory, when the image has a bitmaps extension qemu vouches for. */
  readonly bitmaps: BitmapsExtension | undefined;
}

/**
 * Reads and checks the header of the qcow2 image in `file` (named `image` in messages).
 * Features that change how guest data is found — a backing file, encryption, an external data
 * file, extended L2 entries, unknown incompatible features — and the corrupt bit are refused
 * with SOURCE_UNREADABLE saying why, as is any field out of range (docs/disks-qcow2.md).
 */
export async function readQcow2Header(file: DiskReader, image: string): Promise<Qcow2Header> {
  if (file.size < V2_HEADER_LENGTH)
    throw unreadable(image, `it is ${file.size} bytes, shorter than a qcow2 header`);
  const fixed = await file.read(0, Math.min(file.size, V3_MIN_HEADER_LENGTH + 8));
  if (!fixed.subarray(0, 4).equals(QCOW2_MAGIC))
    throw unreadable(image, 'it does not start with the qcow2 magic QFI\\xfb');
  const version = fixed.readUInt32BE(4);
  if (version !== 2 && version !== 3)
    throw unreadable(image, `qcow2 version ${version} is not supported (2 and 3 are)`);
  const clusterBits = fixed.readUInt32BE(20);
  if (clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS)
    throw unreadable(
      image,
      `cluster_bits ${clusterBits} is outside ${MIN_CLUSTER_BITS}–${MAX_CLUSTER_BITS}`,
    );
  const clusterSize = 2 ** clusterBits;
  const headerLength =
    version === 2 ? V2_HEADER_LENGTH : v3HeaderLength(fixed, clusterSize, file.size, image);
  await refuseBackingFile(file, fixed, image);
  const cryptMethod = fixed.readUInt32BE(32);
  if (cryptMethod !== 0)
    throw unreadable(
      image,
      `it is encrypted (${cryptMethod === 1 ? 'AES' : cryptMethod === 2 ? 'LUKS' : `method ${cryptMethod}`}), which is not supported; back up the decrypted disk instead`,
    );
  const firstCluster = await file.read(0, Math.min(file.size, clusterSize));
  const extensions = readHeaderExtensions(firstCluster, headerLength, image);
  const incompatible = version === 3 ? fixed.readBigUInt64BE(72) : 0n;
  refuseIncompatible(incompatible, extensions, image);
  const autoclear = version === 3 ? fixed.readBigUInt64BE(88) : 0n;
  return {
    version,
    clusterBits,
    clusterSize,
    ...l1Table(fixed, file.size, clusterBits, image),
    compression: compression(fixed, headerLength, incompatible, image),
    dirty: has(incompatible, DIRTY),
    snapshotCount: fixed.readUInt32BE(60),
    // A cleared autoclear bit means a program that does not know bitmaps wrote the image since:
    // the bitmaps are stale and the format says to ignore them.
    bitmaps: has(autoclear, AUTOCLEAR_BITMAPS) ? extensions.bitmaps : undefined,
  };
}

function v3HeaderLength(
  fixed: Buffer,
  clusterSize: number,
  fileSize: number,
  image: string,
): number {
  if (fixed.length < V3_MIN_HEADER_LENGTH)
    throw unreadable(image, `it is ${fixed.length} bytes, shorter than a qcow2 v3 header`);
  const length = fixed.readUInt32BE(100);
  if (length < V3_MIN_HEADER_LENGTH || length % 8 !== 0 || length > clusterSize)
    throw unreadable(
      image,
      `header_length ${length} is invalid (a multiple of 8 from ${V3_MIN_HEADER_LENGTH} to the cluster size)`,
    );
  if (length > fileSize)
    throw unreadable(
      image,
      `its ${length}-byte header runs past the end of the ${fileSize}-byte file`,
    );
  return length;
}

async function refuseBackingFile(file: DiskReader, fixed: Buffer, image: string): Promise<void> {
  const offset = readU64(fixed, 8);
  if (offset === 0) return;
  const length = fixed.readUInt32BE(16);
  let name = '(its name cannot be read)';
  if (length > 0 && length <= MAX_BACKING_NAME && offset + length <= file.size)
    name = JSON.stringify(printable((await file.read(offset, length)).toString('utf8')));
  throw unreadable(
    image,
    `it has a backing file ${name}, and backing chains are not supported yet; flatten the chain into one image first (qemu-img convert -O qcow2 <image> <flat image>)`,
  );
}

function refuseIncompatible(features: bigint, extensions: HeaderExtensions, image: string): void {
  if (has(features, CORRUPT))
    throw unreadable(
      image,
      'qemu marked it corrupt; check and repair it first (qemu-img check -r all), or restore it from a backup',
    );
  if (has(features, EXTERNAL_DATA))
    throw unreadable(
      image,
      `its guest data lives in an external data file${extensions.externalDataFile === undefined ? '' : ` (${JSON.stringify(extensions.externalDataFile)})`}, which is not supported; convert it into one image first (qemu-img convert -O qcow2)`,
    );
  if (has(features, EXTENDED_L2))
    throw unreadable(
      image,
      'it uses extended L2 entries (subclusters), which are not supported yet; convert it first (qemu-img convert -O qcow2 -o extended_l2=off)',
    );
  const unknown: string[] = [];
  for (let bit = 0; bit < 64; bit++) {
    if (!has(features, bit) || KNOWN_INCOMPATIBLE.includes(bit)) continue;
    const name = extensions.featureNames.get(`incompatible:${bit}`);
    unknown.push(name === undefined ? `bit ${bit}` : `bit ${bit} "${name}"`);
  }
  if (unknown.length > 0)
    throw unreadable(
      image,
      `it uses incompatible features this reader does not know (${unknown.join(', ')})`,
    );
}

function compression(
  fixed: Buffer,
  headerLength: number,
  incompatible: bigint,
  image: string,
): Qcow2Compression {
  const type = headerLength > V3_MIN_HEADER_LENGTH ? fixed[V3_MIN_HEADER_LENGTH]! : 0;
  const known = COMPRESSION_TYPES[type];
  if (known === undefined) throw unreadable(image, `compression type ${type} is unknown`);
  // A type other than deflate must be announced by its incompatible bit, so that readers that
  // only know deflate refuse the image instead of misreading it.
  if (type !== 0 && !has(incompatible, COMPRESSION_TYPE))
    throw unreadable(image, `compression type ${type} is set without its incompatible feature bit`);
  return known;
}

function l1Table(fixed: Buffer, fileSize: number, clusterBits: number, image: string) {
  const size = readU64(fixed, 24);
  if (!Number.isSafeInteger(size)) throw unreadable(image, 'its virtual size is out of range');
  const l1Size = fixed.readUInt32BE(36);
  const l1TableOffset = readU64(fixed, 40);
  const clusterSize = 2 ** clusterBits;
  const bytesPerL2 = clusterSize * (clusterSize / 8);
  const l1Entries = Math.ceil(size / bytesPerL2);
  if (l1Size < l1Entries)
    throw unreadable(
      image,
      `its L1 table has ${l1Size} entries, fewer than the ${l1Entries} its ${size}-byte virtual size needs`,
    );
  if (l1Size * 8 > MAX_L1_BYTES)
    throw unreadable(image, `its L1 table of ${l1Size} entries is larger than 32 MiB`);
  if (l1Entries > 0) {
    if (l1TableOffset % clusterSize !== 0 || l1TableOffset < clusterSize)
      throw unreadable(
        image,
        `its L1 table offset ${l1TableOffset} is not a cluster after the header`,
      );
    if (l1TableOffset + l1Entries * 8 > fileSize)
      throw unreadable(image, `its L1 table lies past the end of the ${fileSize}-byte file`);
  }
  return { size, l1Entries, l1TableOffset };
}

function has(features: bigint, bit: number): boolean {
  return ((features >> BigInt(bit)) & 1n) === 1n;
}
