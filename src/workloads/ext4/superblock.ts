import { join64, unreadable } from './damage.js';
import { checkReadable, INCOMPAT, RO_COMPAT, COMPAT, type FeatureFlags } from './features.js';

/** Where the superblock lies, in bytes from the start of the file system, and its length. */
export const SUPERBLOCK_OFFSET = 1024;
export const SUPERBLOCK_SIZE = 1024;
const MAGIC = 0xef53;
/** 2¹⁰ to 2¹⁶ bytes: the block sizes the format defines. */
const MAX_LOG_BLOCK_SIZE = 6;

/** The superblock fields this reader uses, each checked against the others and the disk. */
export interface Superblock {
  readonly blockSize: number;
  readonly blocksCount: number;
  /** The block that holds the superblock: 1 with 1 KiB blocks, else 0. */
  readonly superblockBlock: number;
  readonly firstDataBlock: number;
  readonly blocksPerGroup: number;
  readonly inodesPerGroup: number;
  readonly inodesCount: number;
  readonly groupCount: number;
  readonly inodeSize: number;
  readonly descriptorSize: number;
  /** meta_bg: the first group-descriptor block found in its meta group instead of after the superblock. */
  readonly firstMetaBlockGroup: number;
  /** sparse_super2: the two groups that hold backup superblocks. */
  readonly backupGroups: readonly [number, number];
  readonly flags: FeatureFlags;
  /** Features that change how structures are read. */
  readonly uses: {
    readonly fileType: boolean;
    readonly metaBlockGroups: boolean;
    readonly is64bit: boolean;
    readonly inlineData: boolean;
    readonly sparseSuper: boolean;
    readonly sparseSuper2: boolean;
    /** gdt_csum or metadata_csum: group flags and unused-inode counts are maintained. */
    readonly groupChecksums: boolean;
  };
  readonly label: Buffer;
  readonly uuid: string;
  /** The journal holds changes not yet written in place (the file system was not unmounted). */
  readonly needsRecovery: boolean;
}

/**
 * Parses and checks a superblock. `bytesAvailable` is what the disk holds from the start of the
 * file system: one that claims more blocks than that is refused rather than read short.
 */
export function parseSuperblock(raw: Buffer, bytesAvailable: number): Superblock {
  if (raw.length < SUPERBLOCK_SIZE) throw unreadable('the superblock is cut short');
  if (raw.readUInt16LE(0x38) !== MAGIC)
    throw unreadable('no ext2/ext3/ext4 superblock (magic 0xEF53) 1024 bytes into the volume');
  const revision = raw.readUInt32LE(0x4c);
  if (revision > 1) throw unreadable(`superblock revision ${revision} is unknown`);
  const logBlockSize = raw.readUInt32LE(0x18);
  if (logBlockSize > MAX_LOG_BLOCK_SIZE)
    throw unreadable(`block size 2^${10 + logBlockSize} is out of range (1–64 KiB)`);
  const blockSize = 1024 << logBlockSize;
  const flags: FeatureFlags = {
    compat: raw.readUInt32LE(0x5c),
    incompat: raw.readUInt32LE(0x60),
    roCompat: raw.readUInt32LE(0x64),
  };
  checkReadable(flags);
  const is64bit = (flags.incompat & INCOMPAT['64bit']) !== 0;
  const blocksCount = join64(raw.readUInt32LE(0x4), is64bit ? raw.readUInt32LE(0x150) : 0);
  if (blocksCount < 2) throw unreadable(`a block count of ${blocksCount} is too small`);
  if (blocksCount * blockSize > bytesAvailable)
    throw unreadable(
      `it claims ${blocksCount} blocks of ${blockSize} bytes, but the volume holds only ${bytesAvailable} bytes (truncated image or wrong offset?)`,
    );
  const superblockBlock = blockSize === 1024 ? 1 : 0;
  const firstDataBlock = raw.readUInt32LE(0x14);
  if (firstDataBlock > superblockBlock)
    throw unreadable(`first data block ${firstDataBlock} is wrong for ${blockSize}-byte blocks`);
  const blocksPerGroup = checkedBlocksPerGroup(raw, flags, logBlockSize);
  const groupCount = Math.ceil((blocksCount - firstDataBlock) / blocksPerGroup);
  const inodesPerGroup = raw.readUInt32LE(0x28);
  if (inodesPerGroup < 1 || inodesPerGroup > 8 * blockSize)
    throw unreadable(`${inodesPerGroup} inodes per group is out of range`);
  const inodesCount = raw.readUInt32LE(0x0);
  if (inodesCount < 2 || inodesCount > groupCount * inodesPerGroup)
    throw unreadable(
      `${inodesCount} inodes do not fit ${groupCount} groups of ${inodesPerGroup} inodes`,
    );
  const inodeSize = revision === 0 ? 128 : raw.readUInt16LE(0x58);
  if (!powerOfTwo(inodeSize) || inodeSize < 128 || inodeSize > blockSize)
    throw unreadable(`inode size ${inodeSize} is invalid`);
  const descriptorSize = is64bit ? raw.readUInt16LE(0xfe) : 32;
  if (!powerOfTwo(descriptorSize) || descriptorSize < (is64bit ? 64 : 32) || descriptorSize > 1024)
    throw unreadable(`group descriptor size ${descriptorSize} is invalid`);
  const metaBlockGroups = (flags.incompat & INCOMPAT.meta_bg) !== 0;
  const firstMetaBlockGroup = metaBlockGroups ? raw.readUInt32LE(0x104) : Infinity;
  const descriptorBlocks = Math.ceil(groupCount / (blockSize / descriptorSize));
  if (metaBlockGroups && firstMetaBlockGroup > descriptorBlocks)
    throw unreadable(`first meta block group ${firstMetaBlockGroup} is past the descriptors`);
  if (superblockBlock + 1 + Math.min(descriptorBlocks, firstMetaBlockGroup) > blocksCount)
    throw unreadable(`the descriptors of ${groupCount} groups do not fit the file system`);
  return {
    blockSize,
    blocksCount,
    superblockBlock,
    firstDataBlock,
    blocksPerGroup,
    inodesPerGroup,
    inodesCount,
    groupCount,
    inodeSize,
    descriptorSize,
    firstMetaBlockGroup,
    backupGroups: [raw.readUInt32LE(0x24c), raw.readUInt32LE(0x250)],
    flags,
    uses: {
      fileType: (flags.incompat & INCOMPAT.filetype) !== 0,
      metaBlockGroups,
      is64bit,
      inlineData: (flags.incompat & INCOMPAT.inline_data) !== 0,
      sparseSuper: (flags.roCompat & RO_COMPAT.sparse_super) !== 0,
      sparseSuper2: (flags.compat & COMPAT.sparse_super2) !== 0,
      groupChecksums: (flags.roCompat & (RO_COMPAT.gdt_csum | RO_COMPAT.metadata_csum)) !== 0,
    },
    label: Buffer.from(raw.subarray(0x78, 0x88)),
    uuid: formatUuid(raw.subarray(0x68, 0x78)),
    needsRecovery: (flags.incompat & INCOMPAT.recover) !== 0,
  };
}

/**
 * Blocks per group, which bounds the group count. With bigalloc a group's bitmap counts
 * clusters of several blocks, so the block count per group is clusters × blocks per cluster.
 */
function checkedBlocksPerGroup(raw: Buffer, flags: FeatureFlags, logBlockSize: number): number {
  const blockSize = 1024 << logBlockSize;
  const blocksPerGroup = raw.readUInt32LE(0x20);
  if ((flags.roCompat & RO_COMPAT.bigalloc) === 0) {
    if (blocksPerGroup < 8 || blocksPerGroup > 8 * blockSize)
      throw unreadable(`${blocksPerGroup} blocks per group is out of range`);
    return blocksPerGroup;
  }
  const logClusterSize = raw.readUInt32LE(0x1c);
  const clustersPerGroup = raw.readUInt32LE(0x24);
  if (logClusterSize < logBlockSize || logClusterSize > logBlockSize + 16)
    throw unreadable(`cluster size 2^${10 + logClusterSize} is invalid`);
  if (clustersPerGroup < 8 || clustersPerGroup > 8 * blockSize)
    throw unreadable(`${clustersPerGroup} clusters per group is out of range`);
  if (blocksPerGroup !== clustersPerGroup * 2 ** (logClusterSize - logBlockSize))
    throw unreadable(`${blocksPerGroup} blocks per group disagrees with the cluster size`);
  return blocksPerGroup;
}

function powerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

function formatUuid(bytes: Buffer): string {
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
