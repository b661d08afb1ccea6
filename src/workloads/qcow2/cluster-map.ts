import type { DiskReader } from '../partition-table.js';
import type { Qcow2Header } from './header.js';
import { unreadable } from './unreadable.js';

/** Where the guest data of one cluster is, as its L2 entry says. */
export type ClusterMapping =
  | { readonly kind: 'unallocated' }
  | { readonly kind: 'zero' }
  | { readonly kind: 'data'; readonly host: number }
  | { readonly kind: 'compressed'; readonly host: number; readonly length: number };

const UNALLOCATED: ClusterMapping = { kind: 'unallocated' };
const ZERO: ClusterMapping = { kind: 'zero' };
const TWO_32 = 2 ** 32;
/** Bits 9–55 of an entry: a host offset (the low 9 bits of the low word are flags). */
const OFFSET_LOW_MASK = 0xfffffe00;
const OFFSET_HIGH_MASK = 0x00ffffff;
const COMPRESSED_BIT = 0x40000000;
/** L2 tables kept in memory, in bytes: 4 MiB covers 32 GiB of guest at 64 KiB clusters. */
const L2_CACHE_BYTES = 4 * 1024 * 1024;

/**
 * The guest-cluster → host mapping of a qcow2 image: the L1 table (checked whole when loaded)
 * and its L2 tables, read on demand through a small LRU cache and checked entry by entry when
 * used. Every host offset is checked against alignment, the header cluster and the end of the
 * file before anything is read from it.
 */
export class ClusterMap {
  readonly entriesPerL2: number;
  private readonly cache = new Map<number, Promise<Buffer>>();
  private readonly cacheCapacity: number;

  private constructor(
    private readonly file: DiskReader,
    private readonly header: Qcow2Header,
    private readonly image: string,
    private readonly l2Offsets: Float64Array,
  ) {
    this.entriesPerL2 = header.clusterSize / 8;
    this.cacheCapacity = Math.max(2, Math.floor(L2_CACHE_BYTES / header.clusterSize));
  }

  /** Reads and checks the L1 entries the virtual size needs. */
  static async load(file: DiskReader, header: Qcow2Header, image: string): Promise<ClusterMap> {
    const raw = await file.read(header.l1TableOffset, header.l1Entries * 8);
    const l2Offsets = new Float64Array(header.l1Entries);
    for (let i = 0; i < header.l1Entries; i++) {
      const high = raw.readUInt32BE(i * 8);
      const low = raw.readUInt32BE(i * 8 + 4);
      if ((low & 0x1ff) !== 0 || (high & 0x7f000000) !== 0)
        throw unreadable(image, `L1 entry ${i} has reserved bits set`);
      const offset = hostOffset(high, low);
      if (offset !== 0) checkTableCluster(offset, `L1 entry ${i}`, file.size, header, image);
      l2Offsets[i] = offset;
    }
    return new ClusterMap(file, header, image, l2Offsets);
  }

  /** The mapping of guest cluster `cluster` (which must lie inside the virtual size). */
  async lookup(cluster: number): Promise<ClusterMapping> {
    const l1Index = Math.floor(cluster / this.entriesPerL2);
    const table = await this.l2Table(l1Index);
    return table === undefined ? UNALLOCATED : this.decode(table, cluster);
  }

  /** The L2 table behind L1 entry `l1Index`, or undefined when that whole range is unallocated. */
  async l2Table(l1Index: number): Promise<Buffer | undefined> {
    const offset = this.l2Offsets[l1Index] ?? 0;
    if (offset === 0) return undefined;
    let table = this.cache.get(l1Index);
    if (table !== undefined) {
      this.cache.delete(l1Index);
    } else {
      const reading = this.file.read(offset, this.header.clusterSize);
      // A failed read is not remembered: the next lookup tries again.
      reading.catch(() => {
        if (this.cache.get(l1Index) === reading) this.cache.delete(l1Index);
      });
      table = reading;
    }
    this.cache.set(l1Index, table);
    for (const oldest of this.cache.keys()) {
      if (this.cache.size <= this.cacheCapacity) break;
      this.cache.delete(oldest);
    }
    return table;
  }

  /** Decodes and checks the entry of guest cluster `cluster` in its L2 table. */
  decode(table: Buffer, cluster: number): ClusterMapping {
    const at = (cluster % this.entriesPerL2) * 8;
    const high = table.readUInt32BE(at);
    const low = table.readUInt32BE(at + 4);
    const { clusterSize } = this.header;
    const where = `the L2 entry of guest offset ${cluster * clusterSize}`;
    if ((high & COMPRESSED_BIT) !== 0) return this.compressed(high, low, where);
    if ((low & 0x1fe) !== 0 || (high & 0x3f000000) !== 0)
      throw unreadable(this.image, `${where} has reserved bits set`);
    if ((low & 1) !== 0) {
      if (this.header.version === 2)
        throw unreadable(this.image, `${where} has the zero flag, which version 2 does not have`);
      return ZERO;
    }
    const host = hostOffset(high, low);
    if (host === 0) return UNALLOCATED;
    if (host % clusterSize !== 0 || host < clusterSize)
      throw unreadable(this.image, `${where} points at ${host}, not a cluster after the header`);
    // Only the guest-visible part of the last cluster has to be in the file.
    const needed = Math.min(clusterSize, this.header.size - cluster * clusterSize);
    if (host + needed > this.file.size)
      throw unreadable(
        this.image,
        `${where} points at ${host}, past the end of the ${this.file.size}-byte file`,
      );
    return { kind: 'data', host };
  }

  /**
   * A compressed cluster's descriptor: its host offset in the low `70 - cluster_bits` bits, then
   * the count of further 512-byte sectors it spans. The count is a bound, not an exact length,
   * and the last sector may run past the end of the file, as qemu writes it.
   */
  private compressed(high: number, low: number, where: string): ClusterMapping {
    const { clusterBits, clusterSize } = this.header;
    const offsetBitsInHigh = 70 - clusterBits - 32;
    const host = low + (high & ((1 << offsetBitsInHigh) - 1)) * TWO_32;
    const sectors = ((high >>> offsetBitsInHigh) & ((1 << (clusterBits - 8)) - 1)) + 1;
    if (host < clusterSize || host >= this.file.size)
      throw unreadable(
        this.image,
        `${where} points at compressed data at ${host}, outside the ${this.file.size}-byte file's clusters`,
      );
    const length = Math.min(sectors * 512 - (host % 512), this.file.size - host);
    return { kind: 'compressed', host, length };
  }
}

function hostOffset(high: number, low: number): number {
  return ((low & OFFSET_LOW_MASK) >>> 0) + (high & OFFSET_HIGH_MASK) * TWO_32;
}

function checkTableCluster(
  offset: number,
  what: string,
  fileSize: number,
  header: Qcow2Header,
  image: string,
): void {
  const { clusterSize } = header;
  if (offset % clusterSize !== 0 || offset < clusterSize)
    throw unreadable(image, `${what} points at ${offset}, not a cluster after the header`);
  if (offset + clusterSize > fileSize)
    throw unreadable(
      image,
      `${what} points at an L2 table at ${offset}, past the end of the ${fileSize}-byte file`,
    );
}
