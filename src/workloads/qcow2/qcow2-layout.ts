import { QCOW2_MAGIC } from './header.js';

/** Bit 63 of L1 and L2 entries: the cluster's refcount is exactly 1 (written in place). */
export const COPIED = 1n << 63n;
/** 16-bit refcounts, qemu's default. */
export const REFCOUNT_ORDER = 4;
const HEADER_LENGTH = 112;

/** Where the written image keeps its tables, in host bytes. */
export interface WrittenLayout {
  readonly clusterBits: number;
  readonly size: number;
  readonly l1Size: number;
  readonly l1TableOffset: number;
  readonly refcountTableOffset: number;
  readonly refcountTableClusters: number;
}

/**
 * The refcount blocks and refcount table clusters needed for an image of `clusters` clusters
 * plus themselves: adding blocks adds clusters to count, so this grows both until they cover
 * everything (two or three rounds at most).
 */
export function refcountLayout(
  clusters: number,
  clusterSize: number,
): { blocks: number; tableClusters: number } {
  const perBlock = (clusterSize * 8) / 2 ** REFCOUNT_ORDER;
  let blocks = 0;
  let tableClusters = 0;
  for (;;) {
    const neededBlocks = Math.ceil((clusters + blocks + tableClusters) / perBlock);
    const neededTable = Math.ceil((neededBlocks * 8) / clusterSize);
    if (neededBlocks === blocks && neededTable === tableClusters) return { blocks, tableClusters };
    blocks = neededBlocks;
    tableClusters = neededTable;
  }
}

/**
 * Refcount block `index` of an image whose clusters 0 to `total - 1` are each used exactly
 * once — true of everything the writer makes, which never shares or frees a cluster.
 */
export function refcountBlock(index: number, total: number, clusterSize: number): Buffer {
  const perBlock = clusterSize / 2;
  const block = Buffer.alloc(clusterSize);
  const used = Math.min(perBlock, total - index * perBlock);
  for (let i = 0; i < used; i++) block.writeUInt16BE(1, i * 2);
  return block;
}

/** The header cluster of a qcow2 v3 image with no optional features and no extensions. */
export function headerCluster(layout: WrittenLayout): Buffer {
  const cluster = Buffer.alloc(2 ** layout.clusterBits);
  QCOW2_MAGIC.copy(cluster, 0);
  cluster.writeUInt32BE(3, 4);
  cluster.writeUInt32BE(layout.clusterBits, 20);
  cluster.writeBigUInt64BE(BigInt(layout.size), 24);
  cluster.writeUInt32BE(layout.l1Size, 36);
  cluster.writeBigUInt64BE(BigInt(layout.l1TableOffset), 40);
  cluster.writeBigUInt64BE(BigInt(layout.refcountTableOffset), 48);
  cluster.writeUInt32BE(layout.refcountTableClusters, 56);
  // Snapshots, features (72–95) and compression type (104, deflate) stay zero; the header
  // extensions that follow it start with the end marker, also zeros.
  cluster.writeUInt32BE(REFCOUNT_ORDER, 96);
  cluster.writeUInt32BE(HEADER_LENGTH, 100);
  return cluster;
}
