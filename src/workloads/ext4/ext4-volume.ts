import type { DiskReader } from '../partition-table.js';
import { BlockReader } from './block-reader.js';
import { badRequest, notFound, unreadable } from './damage.js';
import type { DirectoryRecord } from './directory.js';
import { toEntry, type Ext4Entry } from './entry.js';
import { featureNames } from './features.js';
import type { ContentPiece } from './file-content.js';
import type { Inode } from './inode.js';
import { InodeReader } from './inode-reader.js';
import { describeTarget, displayName, pathComponents, type Ext4Target } from './paths.js';
import {
  parseSuperblock,
  SUPERBLOCK_OFFSET,
  SUPERBLOCK_SIZE,
  type Superblock,
} from './superblock.js';

const ROOT_INODE = 2;
/** The most one readFile call returns; read a bigger file in pieces. */
export const MAX_READ_LENGTH = 64 * 1024 * 1024;

/**
 * Opens the ext2, ext3 or ext4 file system that starts `offset` bytes into `disk` (0 for a bare
 * file system, a partition's offset otherwise), read-only. The superblock is checked before
 * anything else is read; features this reader cannot read are refused (docs/disks-ext4.md).
 */
export async function openExt4(disk: DiskReader, offset = 0): Promise<Ext4Volume> {
  if (
    !Number.isSafeInteger(offset) ||
    offset < 0 ||
    offset + SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE > disk.size
  )
    throw unreadable(`no room for a superblock at offset ${offset} of a ${disk.size}-byte disk`);
  const raw = await disk.read(offset + SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE);
  const sb = parseSuperblock(raw, disk.size - offset);
  const volume = new Ext4Volume(sb, new BlockReader(disk, offset, sb.blockSize, sb.blocksCount));
  const root = await volume.inode(ROOT_INODE);
  if (root.type !== 'dir') throw unreadable(`the root inode is a ${root.type}, not a directory`);
  return volume;
}

/**
 * A read-only ext2/ext3/ext4 file system: paths, listings, file content and symlink targets.
 * Paths are text or bytes from the root; symlinks are reported, never followed. Damage is
 * SOURCE_UNREADABLE, a path that is not there RESOURCE_NOT_FOUND.
 */
export class Ext4Volume {
  /** The volume label (may be empty). */
  readonly label: string;
  readonly uuid: string;
  readonly blockSize: number;
  /** The file system's size in bytes. */
  readonly size: number;
  /** The feature flags set, by name. */
  readonly features: readonly string[];
  /** What the caller should know about the reading (a journal not replayed, say). */
  readonly warnings: readonly string[];
  /** The inode of the root directory. */
  readonly rootInode = ROOT_INODE;
  private readonly reader: InodeReader;

  /** Use {@link openExt4}. */
  constructor(sb: Superblock, blocks: BlockReader) {
    const end = sb.label.indexOf(0);
    this.label = sb.label.subarray(0, end === -1 ? sb.label.length : end).toString('utf8');
    this.uuid = sb.uuid;
    this.blockSize = sb.blockSize;
    this.size = sb.blocksCount * sb.blockSize;
    this.features = featureNames(sb.flags);
    this.warnings = sb.needsRecovery
      ? [
          'The journal holds changes never written in place (the file system was not unmounted cleanly); they are not replayed, so the newest changes may be missing.',
        ]
      : [];
    this.reader = new InodeReader(sb, blocks);
  }

  /** The entry `path` names (the root for `/`). Symlinks along the path are not followed. */
  async stat(path: string | Buffer): Promise<Ext4Entry> {
    const { inode, name } = await this.lookup(path);
    return this.entry(name, inode);
  }

  /** The entries of the directory at `target`, without `.` and `..`, in on-disk order. */
  async list(target: Ext4Target): Promise<Ext4Entry[]> {
    const dir = await this.resolve(target);
    if (dir.type !== 'dir') throw notFound(describeTarget(target), 'not a directory');
    const entries: Ext4Entry[] = [];
    for await (const record of this.records(dir))
      entries.push(await this.entry(record.name, await this.inode(record.inode)));
    return entries;
  }

  /**
   * Up to `length` bytes of the regular file at `target` from `offset` (fewer at its end).
   * Holes and unwritten extents read as zeros. At most {@link MAX_READ_LENGTH} bytes a call.
   */
  async readFile(target: Ext4Target, offset: number, length: number): Promise<Buffer> {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0)
      throw badRequest(`Cannot read ${length} bytes at offset ${offset}`);
    if (length > MAX_READ_LENGTH)
      throw badRequest(`Read at most ${MAX_READ_LENGTH} bytes at a time, not ${length}`);
    const inode = await this.resolve(target);
    if (inode.type !== 'file')
      throw badRequest(`${describeTarget(target)} is a ${inode.type}, not a file`);
    const end = Math.min(inode.size, offset + length);
    return offset >= end ? Buffer.alloc(0) : this.reader.read(inode, offset, end);
  }

  /** The target of the symlink at `target`, as bytes. */
  async readlink(target: Ext4Target): Promise<Buffer> {
    const inode = await this.resolve(target);
    if (inode.type !== 'symlink') throw badRequest(`${describeTarget(target)} is not a symlink`);
    return this.reader.linkTarget(inode);
  }

  /** Inode `number`, checked. */
  inode(number: number): Promise<Inode> {
    return this.reader.inode(number);
  }

  /** A regular file's content in order: data pieces, and zero pieces for holes. */
  content(inode: Inode): AsyncGenerator<ContentPiece> {
    return this.reader.content(inode);
  }

  /** A directory inode's records (name bytes and inode), without `.` and `..`. */
  records(dir: Inode): AsyncGenerator<DirectoryRecord> {
    return this.reader.records(dir);
  }

  /** The listing entry for `inode` under `name`; symlinks carry their target. */
  async entry(name: Buffer, inode: Inode): Promise<Ext4Entry> {
    const target = inode.type === 'symlink' ? await this.reader.linkTarget(inode) : undefined;
    return toEntry(name, inode, target);
  }

  /** The inode a path names and its last name, walking from the root without following symlinks. */
  async lookup(path: string | Buffer): Promise<{ inode: Inode; name: Buffer }> {
    const names = pathComponents(path);
    let inode = await this.inode(ROOT_INODE);
    for (const [depth, wanted] of names.entries()) {
      if (inode.type !== 'dir') {
        const parent = names.slice(0, depth).map(displayName).join('/');
        throw notFound(describeTarget(path), `/${parent} is a ${inode.type}, not a directory`);
      }
      let found: number | undefined;
      for await (const record of this.records(inode))
        if (record.name.equals(wanted)) {
          found = record.inode;
          break;
        }
      if (found === undefined) throw notFound(describeTarget(path), 'no such file or directory');
      inode = await this.inode(found);
    }
    return { inode, name: Buffer.from(names.at(-1) ?? []) };
  }

  private async resolve(target: Ext4Target): Promise<Inode> {
    return typeof target === 'number' ? this.inode(target) : (await this.lookup(target)).inode;
  }
}
