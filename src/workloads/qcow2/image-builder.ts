import type { FileHandle } from 'node:fs/promises';
import { HoldfastError, throwIfAborted } from '../../core/index.js';
import { COPIED, headerCluster, refcountBlock, refcountLayout } from './qcow2-layout.js';

/** Appended clusters are written together once this many bytes wait. */
const WRITE_BATCH = 1024 * 1024;

/**
 * Builds a qcow2 v3 image in an open file from guest clusters given in increasing order.
 * Layout: header (cluster 0), the L1 table, then data clusters each followed — once its range
 * of guest clusters is complete — by the L2 table that maps them, then the refcount blocks and
 * the refcount table. All-zero clusters are not stored: with no backing file they read as zeros.
 */
export class ImageBuilder {
  private readonly entriesPerL2: number;
  private readonly l1: Buffer;
  private readonly zeroCluster: Buffer;
  private nextCluster: number;
  private l2: { index: number; table: Buffer } | undefined;
  private queued: Buffer[] = [];
  private queuedBytes = 0;
  private lastGuestCluster = -1;
  dataClusters = 0;

  constructor(
    private readonly handle: FileHandle,
    private readonly size: number,
    private readonly clusterBits: number,
    private readonly signal: AbortSignal | undefined,
  ) {
    const clusterSize = 2 ** clusterBits;
    this.entriesPerL2 = clusterSize / 8;
    const l1Size = Math.ceil(size / (clusterSize * this.entriesPerL2));
    this.l1 = Buffer.alloc(l1Size * 8);
    this.zeroCluster = Buffer.alloc(clusterSize);
    this.nextCluster = 1 + Math.ceil(this.l1.length / clusterSize);
  }

  get clusterSize(): number {
    return this.zeroCluster.length;
  }

  /** Adds guest cluster `index` (the caller's buffer becomes the writer's). */
  async addCluster(index: number, data: Buffer): Promise<void> {
    if (index <= this.lastGuestCluster)
      throw new HoldfastError('INTERNAL', `qcow2 cluster ${index} was given out of order.`);
    this.lastGuestCluster = index;
    if (data.equals(this.zeroCluster)) return;
    const l1Index = Math.floor(index / this.entriesPerL2);
    if (this.l2?.index !== l1Index) {
      await this.closeL2();
      this.l2 = { index: l1Index, table: Buffer.alloc(this.clusterSize) };
    }
    const host = await this.append(data);
    this.l2.table.writeBigUInt64BE(BigInt(host) | COPIED, (index % this.entriesPerL2) * 8);
    this.dataClusters++;
  }

  /** Writes the L1 table, refcounts and header; returns the file's size. */
  async finish(): Promise<number> {
    await this.closeL2();
    await this.flush();
    const before = this.nextCluster;
    const { blocks, tableClusters } = refcountLayout(before, this.clusterSize);
    const total = before + blocks + tableClusters;
    const table = Buffer.alloc(tableClusters * this.clusterSize);
    for (let i = 0; i < blocks; i++) {
      const host = await this.append(refcountBlock(i, total, this.clusterSize));
      table.writeBigUInt64BE(BigInt(host), i * 8);
    }
    const tableOffset = this.nextCluster * this.clusterSize;
    await this.queue(table);
    await this.flush();
    await this.writeAt(this.l1, this.clusterSize);
    // The header goes last: until it is written the file is not a qcow2 image at all.
    const header = headerCluster({
      clusterBits: this.clusterBits,
      size: this.size,
      l1Size: this.l1.length / 8,
      // As qemu does, a disk of zero bytes has no L1 table and its offset is 0.
      l1TableOffset: this.l1.length === 0 ? 0 : this.clusterSize,
      refcountTableOffset: tableOffset,
      refcountTableClusters: tableClusters,
    });
    await this.writeAt(header, 0);
    return total * this.clusterSize;
  }

  private async closeL2(): Promise<void> {
    if (this.l2 === undefined) return;
    const host = await this.append(this.l2.table);
    this.l1.writeBigUInt64BE(BigInt(host) | COPIED, this.l2.index * 8);
    this.l2 = undefined;
  }

  /** Appends one cluster and returns its host offset. */
  private async append(cluster: Buffer): Promise<number> {
    const host = this.nextCluster * this.clusterSize;
    await this.queue(cluster);
    return host;
  }

  private async queue(clusters: Buffer): Promise<void> {
    this.queued.push(clusters);
    this.queuedBytes += clusters.length;
    this.nextCluster += clusters.length / this.clusterSize;
    if (this.queuedBytes >= WRITE_BATCH) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.queued.length === 0) return;
    const start = this.nextCluster * this.clusterSize - this.queuedBytes;
    const buffers = this.queued;
    this.queued = [];
    this.queuedBytes = 0;
    await this.writeAt(Buffer.concat(buffers), start);
  }

  private async writeAt(bytes: Buffer, position: number): Promise<void> {
    throwIfAborted(this.signal);
    let done = 0;
    // A regular file takes a write whole unless it fails; the loop is for the exception.
    while (done < bytes.length) {
      const { bytesWritten } = await this.handle.write(
        bytes,
        done,
        bytes.length - done,
        position + done,
      );
      if (bytesWritten === 0) throw new Error('the file system accepted no bytes');
      done += bytesWritten;
    }
  }
}
