import { throwIfAborted } from '../../core/index.js';
import { openDisk, type OpenDisk } from '../disk-reader.js';
import type { ByteRange } from '../byte-ranges.js';
import type { DiskReader } from '../partition-table.js';
import { ClusterMap, type ClusterMapping } from './cluster-map.js';
import { decompressCluster } from './compressed-cluster.js';
import { readQcow2Header, type Qcow2Header } from './header.js';
import { unreadable } from './unreadable.js';

/** A run of guest bytes that the image maps: data, or clusters it marks as reading zeros. */
export interface GuestExtent {
  readonly offset: number;
  readonly length: number;
  /** True for clusters the image records as zeros (no data is stored for them). */
  readonly zero: boolean;
}

/** A qcow2 image read through its own structure: guest bytes by guest offset. */
export interface Qcow2Image extends DiskReader {
  readonly format: 'qcow2';
  /** The guest-visible (virtual) size. */
  readonly size: number;
  readonly header: Qcow2Header;
  /** How messages name the image: its path, for one opened by {@link openQcow2}. */
  readonly source: string;
  /** The image file itself, for readers of its other structures (dirty bitmaps). */
  readonly file: DiskReader;
  /**
   * The guest ranges the image maps, in increasing order, adjacent runs of one kind merged.
   * Ranges not listed were never written and read as zeros: a backup reads only the extents
   * with `zero: false` and treats the rest as holes.
   */
  allocatedExtents(options?: { signal?: AbortSignal }): AsyncIterable<GuestExtent>;
}

/** A qcow2 image file opened for reading. */
export interface Qcow2Disk extends Qcow2Image, OpenDisk {}

/** Reads of at most this many host bytes at once, when adjacent clusters are adjacent on disk. */
const MAX_HOST_RUN = 8 * 1024 * 1024;

/**
 * Opens the qcow2 image at `path` read-only. Its header and L1 table are read and checked at
 * once (SOURCE_UNREADABLE naming the problem: docs/disks-qcow2.md); L2 tables and clusters are
 * checked when first used.
 */
export async function openQcow2(path: string): Promise<Qcow2Disk> {
  const file = await openDisk(path);
  try {
    const image = await readQcow2(file, path);
    return { ...image, close: () => file.close() };
  } catch (error) {
    await file.close();
    throw error;
  }
}

/** Reads a qcow2 image held by any {@link DiskReader} (`name` is used in messages). */
export async function readQcow2(file: DiskReader, name: string): Promise<Qcow2Image> {
  const header = await readQcow2Header(file, name);
  const map = await ClusterMap.load(file, header, name);
  const clusters = new ClusterReader(file, header, map, name);
  return {
    format: 'qcow2',
    size: header.size,
    header,
    source: name,
    file,
    read: (offset, length) => clusters.read(offset, length),
    allocatedExtents: (options) => allocatedExtents(header, map, options?.signal),
    dataExtents: async () => {
      const ranges: ByteRange[] = [];
      for await (const e of allocatedExtents(header, map, undefined)) if (!e.zero) ranges.push(e);
      return ranges;
    },
  };
}

/** Guest reads: cluster by cluster, adjacent host clusters read together. */
class ClusterReader {
  /** The last compressed cluster decompressed: small sequential reads decompress it once. */
  private lastCompressed: { host: number; data: Buffer } | undefined;

  constructor(
    private readonly file: DiskReader,
    private readonly header: Qcow2Header,
    private readonly map: ClusterMap,
    private readonly name: string,
  ) {}

  async read(offset: number, length: number): Promise<Buffer> {
    const { size, clusterSize } = this.header;
    if (
      !Number.isSafeInteger(offset) ||
      !Number.isSafeInteger(length) ||
      offset < 0 ||
      length < 0 ||
      offset + length > size
    )
      throw unreadable(
        this.name,
        `a read of ${length} bytes at ${offset} is outside the ${size}-byte disk`,
      );
    const out = Buffer.alloc(length);
    // A pending run of host bytes to copy to `out` at `runAt`.
    let run: { host: number; length: number; at: number } | undefined;
    const flush = async (): Promise<void> => {
      if (run === undefined) return;
      (await this.file.read(run.host, run.length)).copy(out, run.at);
      run = undefined;
    };
    for (let pos = offset; pos < offset + length;) {
      const cluster = Math.floor(pos / clusterSize);
      const within = pos - cluster * clusterSize;
      const count = Math.min(clusterSize - within, offset + length - pos);
      const mapping = await this.map.lookup(cluster);
      const at = pos - offset;
      if (mapping.kind === 'data') {
        const host = mapping.host + within;
        if (
          run !== undefined &&
          run.host + run.length === host &&
          run.at + run.length === at &&
          run.length + count <= MAX_HOST_RUN
        )
          run.length += count;
        else {
          await flush();
          run = { host, length: count, at };
        }
      } else if (mapping.kind === 'compressed') {
        (await this.decompressed(mapping, cluster)).copy(out, at, within, within + count);
      }
      pos += count;
    }
    await flush();
    return out;
  }

  private async decompressed(
    mapping: Extract<ClusterMapping, { kind: 'compressed' }>,
    cluster: number,
  ): Promise<Buffer> {
    if (this.lastCompressed?.host === mapping.host) return this.lastCompressed.data;
    const stored = await this.file.read(mapping.host, mapping.length);
    let data: Buffer;
    try {
      data = decompressCluster(this.header.compression, stored, this.header.clusterSize);
    } catch (error) {
      throw unreadable(
        this.name,
        `the compressed cluster of guest offset ${cluster * this.header.clusterSize} cannot be read: ${(error as Error).message}`,
        error,
      );
    }
    this.lastCompressed = { host: mapping.host, data };
    return data;
  }
}

async function* allocatedExtents(
  header: Qcow2Header,
  map: ClusterMap,
  signal: AbortSignal | undefined,
): AsyncGenerator<GuestExtent> {
  const { clusterSize, size } = header;
  let pending: { offset: number; length: number; zero: boolean } | undefined;
  for (let l1Index = 0; l1Index < header.l1Entries; l1Index++) {
    throwIfAborted(signal);
    const table = await map.l2Table(l1Index);
    if (table === undefined) continue;
    const first = l1Index * map.entriesPerL2;
    const end = Math.min(first + map.entriesPerL2, Math.ceil(size / clusterSize));
    for (let cluster = first; cluster < end; cluster++) {
      const kind = map.decode(table, cluster).kind;
      if (kind === 'unallocated') continue;
      const offset = cluster * clusterSize;
      const length = Math.min(clusterSize, size - offset);
      const zero = kind === 'zero';
      if (
        pending !== undefined &&
        pending.zero === zero &&
        pending.offset + pending.length === offset
      )
        pending.length += length;
      else {
        if (pending !== undefined) yield pending;
        pending = { offset, length, zero };
      }
    }
  }
  if (pending !== undefined) yield pending;
}
