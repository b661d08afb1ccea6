import { hostname, userInfo } from 'node:os';
import { forEachLimit } from '../core/index.js';
import {
  BlobReader,
  BlobWriter,
  appendPiece,
  createRangeHasher,
  cutImageBlock,
  decodeTree,
  encodeTree,
  IMAGE_BLOCK,
  type BlobSealer,
  type Consistency,
  type ContentPiece,
  type Point,
  type PointManifest,
  type TreeNode,
  type Vault,
} from '../engine/index.js';
import { sliceContent } from './slice-content.js';
import { blockSegments, type ByteRange } from './byte-ranges.js';
import { blockRanges, clipRanges } from './data-extents.js';
import { readRanges } from './disk-reader.js';
import type { DiskReader } from './partition-table.js';

/** One disk to back up. */
export interface ImageDisk {
  /** Its name in the point: `disks/<name>`. */
  readonly name: string;
  readonly disk: DiskReader;
  /**
   * Ranges changed since the parent point's copy of this disk, when the source can tell;
   * everything else is taken from the parent without reading. Undefined: read it all.
   */
  readonly changed?: readonly ByteRange[];
}

/** A small file stored beside the disks (a machine's configuration, its description). */
export interface ImageSideFile {
  /** `machine.json`, or `config/<name>`. */
  readonly path: string;
  readonly data: Buffer;
  readonly mode?: number;
}

export interface ImageBackupOptions {
  readonly disks: readonly ImageDisk[];
  readonly files: readonly ImageSideFile[];
  /** The previous point of the same machine: unchanged blocks are reused from it. */
  readonly parent?: Point;
  readonly tags: readonly string[];
  readonly consistency: Consistency;
  /** The instant the disks were captured. */
  readonly time: number;
  readonly sealer: BlobSealer;
  readonly host?: string;
  readonly signal?: AbortSignal;
}

/** Live counters of an image backup. */
export interface ImageProgress {
  /** Bytes of disk covered so far (read or taken from the parent). */
  bytes: number;
  bytesRead: number;
  totalBytes: number;
  disks: number;
}

/** Bytes per read: whole blocks, with the next read in flight while these are cut. */
const READ_SIZE = 8 * IMAGE_BLOCK;
/** True when two file nodes list the same size and the same pieces. */
function sameContent(a: TreeNode, b: TreeNode): boolean {
  const x = a.content ?? [];
  const y = b.content ?? [];
  return a.size === b.size && x.length === y.length && x.every((piece, i) => piece === y[i]);
}

/** The pieces of a read of whole blocks (the last may be short), as stretches of it. */
function cutRead(data: Buffer): Array<{ offset: number; length: number; hole: boolean }> {
  const pieces: Array<{ offset: number; length: number; hole: boolean }> = [];
  for (let b = 0; b < data.length; b += IMAGE_BLOCK) {
    let at = b;
    for (const piece of cutImageBlock(data.subarray(b, b + IMAGE_BLOCK))) {
      const length = 'hole' in piece ? piece.hole : piece.data.length;
      pieces.push({ offset: at, length, hole: 'hole' in piece });
      at += length;
    }
  }
  return pieces;
}

/** Reads in flight per disk: a sparse disk's data is often many short extents. */
const READS_IN_FLIGHT = 2;
/** Disks read at once. */
const DISK_CONCURRENCY = 2;

/**
 * Backs up disk images into a new point whose tree is `disks/<name>` (one file per disk, cut
 * in aligned blocks with zero stretches as holes) plus the side files. The point is written
 * last, as every point is: it exists only once complete (docs/disks.md).
 */
export class ImageArchiver {
  readonly progress: ImageProgress;
  private readonly writer: BlobWriter;
  private readonly reader: BlobReader;

  constructor(
    private readonly vault: Vault,
    private readonly options: ImageBackupOptions,
  ) {
    const signal = options.signal;
    this.writer = new BlobWriter(vault, { sealer: options.sealer, ...(signal ? { signal } : {}) });
    this.reader = new BlobReader(vault);
    const totalBytes = options.disks.reduce((n, d) => n + d.disk.size, 0);
    this.progress = { bytes: 0, bytesRead: 0, totalBytes, disks: 0 };
  }

  async run(): Promise<Point> {
    const started = this.vault.clock.now();
    const parentDisks = await this.parentDisks();
    const diskNodes: TreeNode[] = [];
    await forEachLimit(this.options.disks, DISK_CONCURRENCY, async (disk) => {
      const previous = parentDisks.get(disk.name);
      const content = await this.diskContent(disk, previous);
      const node = this.fileNode(disk.name, disk.disk.size, content, 0o600);
      // A disk whose content did not change keeps the parent's times, so its node — and, when
      // no disk changed, the whole `disks` directory — is the parent's, stored once.
      diskNodes.push(
        previous && sameContent(previous, node)
          ? { ...node, mtime: previous.mtime, ctime: previous.ctime }
          : node,
      );
      this.progress.disks += 1;
    });
    const root: TreeNode[] = [await this.dirNode('disks', diskNodes)];
    const configNodes: TreeNode[] = [];
    for (const file of this.options.files) {
      const name = file.path.startsWith('config/') ? file.path.slice(7) : file.path;
      const node = this.fileNode(name, file.data.length, await this.store(file.data), file.mode);
      (file.path.startsWith('config/') ? configNodes : root).push(node);
    }
    if (configNodes.length > 0) root.push(await this.dirNode('config', configNodes));
    const tree = (await this.writer.save('tree', encodeTree(root))).id;
    await this.writer.flush();
    const stats = this.writer.stats;
    const manifest: PointManifest = {
      v: 1,
      time: new Date(this.options.time).toISOString(),
      host: this.options.host ?? hostname(),
      user: userInfo().username,
      paths: this.options.disks.map((d) => `disks/${d.name}`),
      tags: [...this.options.tags],
      ...(this.options.parent ? { parent: this.options.parent.id } : {}),
      tree,
      consistency: this.options.consistency,
      stats: {
        files: this.options.disks.length + this.options.files.length,
        dirs: configNodes.length > 0 ? 2 : 1,
        others: 0,
        bytes: this.progress.totalBytes,
        filesRead: this.options.disks.length,
        newBytes: stats.newRawBytes,
        storedBytes: stats.storedBytes,
        errors: 0,
        durationMs: this.vault.clock.now() - started,
      },
      program: 'holdfast 0.1.0',
    };
    const id = await this.vault.saveObject('point', manifest, this.options.signal);
    return { ...manifest, id };
  }

  /** The parent's disk nodes by name (empty without a parent). */
  private async parentDisks(): Promise<Map<string, TreeNode>> {
    const parent = this.options.parent;
    if (parent === undefined) return new Map();
    const root = await this.loadTree(parent.tree);
    const disks = root.find((n) => n.name.toString() === 'disks' && n.subtree);
    if (disks?.subtree === undefined) return new Map();
    const nodes = await this.loadTree(disks.subtree);
    return new Map(nodes.filter((n) => n.type === 'file').map((n) => [n.name.toString(), n]));
  }

  private async diskContent(
    disk: ImageDisk,
    previous: TreeNode | undefined,
  ): Promise<ContentPiece[]> {
    const { plan, reads } = await this.planDisk(disk, previous);
    const content: ContentPiece[] = [];
    let next = 0;
    const appendPlanned = (before: number): void => {
      for (; next < plan.length && plan[next]!.offset < before; next++) {
        for (const piece of plan[next]!.pieces) appendPiece(content, piece);
        this.progress.bytes += plan[next]!.length;
      }
    };
    const hasher = createRangeHasher({
      bytes: reads.reduce((n, r) => n + r.length, 0),
      key: this.vault.keys.id,
    });
    try {
      const reading = {
        readSize: READ_SIZE,
        depth: READS_IN_FLIGHT,
        // Cut here, and the blob ids of the data pieces computed on hashing threads: this
        // thread then only deduplicates and queues, and keeps the sealing threads busy.
        prepare: async (data: Buffer) => {
          const pieces = cutRead(data);
          return {
            pieces,
            ...(await hasher.hash(
              data,
              pieces.filter((p) => !p.hole),
            )),
          };
        },
        ...(this.options.signal ? { signal: this.options.signal } : {}),
      };
      await readRanges(disk.disk, reads, reading, async (at, _length, read) => {
        appendPlanned(at);
        this.progress.bytesRead += read.data.length;
        let hashed = 0;
        for (const piece of read.pieces) {
          if (piece.hole) {
            appendPiece(content, piece.length);
            continue;
          }
          const id = Buffer.from(read.hashes.subarray(hashed * 32, ++hashed * 32)).toString('hex');
          const data = read.data.subarray(piece.offset, piece.offset + piece.length);
          appendPiece(content, (await this.writer.saveHashed('data', id, data)).id);
        }
        this.progress.bytes += read.data.length;
      });
    } finally {
      await hasher.close();
    }
    appendPlanned(Infinity);
    return content;
  }

  /**
   * What becomes of each stretch of a disk, in disk order: pieces kept from the parent, or holes
   * (in `plan`), or ranges to read (in `reads`).
   */
  private async planDisk(
    disk: ImageDisk,
    previous: TreeNode | undefined,
  ): Promise<{
    plan: Array<{ offset: number; length: number; pieces: ContentPiece[] }>;
    reads: ByteRange[];
  }> {
    const size = disk.disk.size;
    const reusable =
      previous?.content !== undefined && previous.size === size && disk.changed !== undefined;
    const plan: Array<{ offset: number; length: number; pieces: ContentPiece[] }> = [];
    const reads: ByteRange[] = [];
    // Asked only when something is read: blocks the disk knows to be zeros become holes unread.
    let extents: readonly ByteRange[] | undefined | null = null;
    for (const segment of blockSegments(size, reusable ? disk.changed! : undefined, IMAGE_BLOCK)) {
      const kept =
        segment.read || !previous?.content
          ? undefined
          : sliceContent(
              previous.content,
              (id) => (this.writer.has(id) ? this.vault.index.get(id)?.rawLength : undefined),
              segment.offset,
              segment.offset + segment.length,
            );
      if (kept) {
        plan.push({ ...segment, pieces: kept });
        continue;
      }
      if (extents === null) extents = await disk.disk.dataExtents?.();
      for (const range of blockRanges(segment.length, clipRanges(extents, segment), IMAGE_BLOCK)) {
        const at = { offset: segment.offset + range.offset, length: range.length };
        // Zeros known without reading are cut as reading them would cut them: one hole.
        if (range.data) reads.push(at);
        else plan.push({ ...at, pieces: [range.length] });
      }
    }
    return { plan, reads };
  }

  private async store(data: Buffer): Promise<string> {
    return (await this.writer.save('data', data)).id;
  }

  private async dirNode(name: string, nodes: TreeNode[]): Promise<TreeNode> {
    const subtree = (await this.writer.save('tree', encodeTree(nodes))).id;
    return { ...this.fileNode(name, 0, undefined, 0o700), type: 'dir', subtree };
  }

  private fileNode(
    name: string,
    size: number,
    content: readonly ContentPiece[] | string | undefined,
    mode = 0o600,
  ): TreeNode {
    const seconds = Math.floor(this.options.time / 1000);
    const time = [seconds, (this.options.time % 1000) * 1_000_000] as const;
    return {
      name: Buffer.from(name),
      type: 'file',
      mode,
      uid: process.getuid?.() ?? 0,
      gid: process.getgid?.() ?? 0,
      mtime: time,
      ctime: time,
      size,
      inode: 0,
      dev: 0,
      nlink: 1,
      ...(content === undefined
        ? {}
        : { content: typeof content === 'string' ? (size === 0 ? [] : [content]) : content }),
    };
  }

  private async loadTree(id: string): Promise<TreeNode[]> {
    return decodeTree(
      await this.reader.load(id, 'tree', this.options.signal),
      `tree ${id.slice(0, 12)}`,
    );
  }
}
