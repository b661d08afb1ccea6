import type { BigIntStats } from 'node:fs';
import { lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { hostname, userInfo } from 'node:os';
import { resolve as resolvePath } from 'node:path';
import { describeError, forEachLimit, HoldfastError, Semaphore } from '../core/index.js';
import { BlobReader } from './blob-reader.js';
import { BlobWriter } from './blob-writer.js';
import type { BlobSealer } from './blob-sealer.js';
import { FastCdcChunker, type Chunker } from './chunker.js';
import { ExcludeMatcher } from './exclude.js';
import { isLargeFile, saveFileContent } from './file-reader.js';
import { IdNames } from './id-names.js';
import type { Consistency, Point, PointManifest } from './point.js';
import {
  decodeTree,
  encodeTree,
  sameNode,
  sameTime,
  timestampFromNs,
  type NodeType,
  type TreeNode,
  type ContentPiece,
} from './tree.js';
import type { Vault } from './vault.js';
import { readXattrs } from './xattrs.js';

/** What to back up and how. */
export interface BackupOptions {
  readonly paths: readonly string[];
  readonly excludes?: readonly string[];
  readonly oneFileSystem?: boolean;
  readonly tags?: readonly string[];
  /** Point whose unchanged files are reused without reading them again. */
  readonly parent?: Point;
  readonly consistency?: Consistency;
  readonly host?: string;
  readonly sealer: BlobSealer;
  readonly signal?: AbortSignal;
  /** Per-entry failures: the entry is left out and the backup goes on. */
  readonly onError?: (path: string, error: unknown) => void;
  readonly program?: string;
}

/** Live counters of a running backup, read by progress displays. */
export interface BackupProgress {
  files: number;
  dirs: number;
  bytes: number;
  bytesRead: number;
  errors: number;
  currentFile: string;
}

/** Concurrent entries per directory, and files read at once across the whole walk. */
const ENTRY_CONCURRENCY = 8;

/** Backs up file-system paths into a vault and writes the recovery point last. */
export class Archiver {
  readonly progress: BackupProgress = {
    files: 0,
    dirs: 0,
    bytes: 0,
    bytesRead: 0,
    errors: 0,
    currentFile: '',
  };
  private readonly writer: BlobWriter;
  private readonly reader: BlobReader;
  private readonly chunker: Chunker;
  private readonly excludes: ExcludeMatcher;
  private readonly names = new IdNames();
  private readonly hardLinks = new Map<string, Promise<readonly ContentPiece[]>>();
  // One large file at a time: its reader keeps a read in flight while it chunks already, and
  // holds two buffers of more than the largest chunk each.
  private readonly largeReads = new Semaphore(1);
  private readonly fileReads = new Semaphore(8);
  private filesRead = 0;
  private others = 0;

  constructor(
    private readonly vault: Vault,
    private readonly options: BackupOptions,
  ) {
    const signal = options.signal;
    this.writer = new BlobWriter(vault, { sealer: options.sealer, ...(signal ? { signal } : {}) });
    this.reader = new BlobReader(vault);
    this.chunker = new FastCdcChunker(vault.config.chunker, vault.keys.chunkerSeed);
    this.excludes = new ExcludeMatcher(options.excludes ?? []);
  }

  /** Runs the backup; returns the new point once it is durable. */
  async run(): Promise<Point> {
    const started = this.vault.clock.now();
    const paths = [...new Set(this.options.paths.map((p) => resolvePath(p)))].sort();
    if (paths.length === 0)
      throw new HoldfastError('USAGE_INVALID', 'Name at least one path to back up.');
    for (const path of paths) await lstatOrThrow(path);
    const parentRoot = this.options.parent
      ? await this.loadTree(this.options.parent.tree)
      : undefined;
    const rootTree = await this.saveVirtualDir('/', buildTrie(paths), parentRoot);
    await this.writer.flush();
    const stats = this.writer.stats;
    const manifest: PointManifest = {
      v: 1,
      time: new Date(started).toISOString(),
      host: this.options.host ?? hostname(),
      user: userInfo().username,
      paths,
      tags: [...(this.options.tags ?? [])],
      ...(this.options.parent ? { parent: this.options.parent.id } : {}),
      tree: rootTree,
      consistency: this.options.consistency ?? 'crash',
      stats: {
        files: this.progress.files,
        dirs: this.progress.dirs,
        others: this.others,
        bytes: this.progress.bytes,
        filesRead: this.filesRead,
        newBytes: stats.newRawBytes,
        storedBytes: stats.storedBytes,
        errors: this.progress.errors,
        durationMs: this.vault.clock.now() - started,
      },
      program: this.options.program ?? 'holdfast',
    };
    // The point is written last: a point that exists always refers to durable data.
    const id = await this.vault.saveObject('point', manifest, this.options.signal);
    return { ...manifest, id };
  }

  /** Saves a directory level that only leads to the requested paths (not all its entries). */
  private async saveVirtualDir(
    dir: string,
    trie: Trie,
    parent: Map<string, TreeNode> | undefined,
  ): Promise<string> {
    const nodes: TreeNode[] = [];
    for (const [name, child] of trie) {
      const path = dir === '/' ? `/${name}` : `${dir}/${name}`;
      const stats = await lstat(path, { bigint: true });
      const previous = parent?.get(Buffer.from(name).toString('latin1'));
      if (child === 'leaf') {
        const node = await this.saveEntry(
          Buffer.from(path),
          Buffer.from(name),
          stats,
          previous,
          stats.dev,
        );
        if (node) nodes.push(node);
      } else {
        const parentSub = previous?.subtree ? await this.loadTree(previous.subtree) : undefined;
        const subtree = await this.saveVirtualDir(path, child, parentSub);
        nodes.push(this.baseNode(Buffer.from(name), 'dir', stats, { subtree }));
      }
    }
    return (await this.writer.save('tree', encodeTree(nodes))).id;
  }

  private async saveEntry(
    path: Buffer,
    name: Buffer,
    stats: BigIntStats,
    previous: TreeNode | undefined,
    rootDev: bigint,
  ): Promise<TreeNode | undefined> {
    const type = nodeType(stats);
    try {
      switch (type) {
        case 'dir': {
          const crossesDevice = this.options.oneFileSystem === true && stats.dev !== rootDev;
          const subtree = await this.saveDir(path, previous, crossesDevice ? undefined : rootDev);
          this.progress.dirs += 1;
          return this.baseNode(name, 'dir', stats, {
            subtree,
            ...xattrsOf(path, stats, previous),
          });
        }
        case 'file':
          return this.baseNode(name, 'file', stats, {
            content: await this.fileContent(path, stats, previous),
            ...xattrsOf(path, stats, previous),
          });
        case 'symlink':
          this.others += 1;
          return this.baseNode(name, 'symlink', stats, {
            target: readlinkSync(path, { encoding: 'buffer' }),
          });
        default:
          this.others += 1;
          return this.baseNode(name, type, stats, { rdev: Number(stats.rdev) });
      }
    } catch (error) {
      if (
        error instanceof HoldfastError &&
        (error.code === 'CANCELLED' ||
          error.code.startsWith('BACKEND_') ||
          error.code.startsWith('VAULT_'))
      ) {
        throw error;
      }
      this.reportError(path, error);
      return undefined;
    }
  }

  /** Saves a directory and returns its tree id; `rootDev` undefined means "do not descend". */
  private async saveDir(
    path: Buffer,
    previous: TreeNode | undefined,
    rootDev: bigint | undefined,
  ): Promise<string> {
    const names = rootDev === undefined ? [] : readdirSync(path, { encoding: 'buffer' });
    const parent =
      previous?.type === 'dir' && previous.subtree
        ? await this.loadTree(previous.subtree)
        : undefined;
    const nodes: TreeNode[] = [];
    await forEachLimit(names, ENTRY_CONCURRENCY, async (name) => {
      const childPath = Buffer.concat([path, SLASH, name]);
      if (!this.excludes.empty && this.excludes.matches(childPath.toString(), name.toString()))
        return;
      let stats: BigIntStats;
      try {
        // Synchronous: metadata calls on a page-cached tree cost a fraction of a thread-pool round trip.
        stats = lstatSync(childPath, { bigint: true });
      } catch (error) {
        this.reportError(childPath, error);
        return;
      }
      const node = await this.saveEntry(
        childPath,
        name,
        stats,
        parent?.get(name.toString('latin1')),
        rootDev ?? stats.dev,
      );
      if (node) nodes.push(node);
    });
    // Most directories of a re-backup are unchanged: their tree would encode to the parent's
    // very bytes, so its id is kept without encoding and hashing it again.
    if (previous?.subtree !== undefined && parent !== undefined && sameEntries(nodes, parent))
      return previous.subtree;
    return (await this.writer.save('tree', encodeTree(nodes))).id;
  }

  private async fileContent(
    path: Buffer,
    stats: BigIntStats,
    previous: TreeNode | undefined,
  ): Promise<readonly ContentPiece[]> {
    this.progress.files += 1;
    this.progress.bytes += Number(stats.size);
    if (
      previous?.type === 'file' &&
      previous.content !== undefined &&
      previous.size === Number(stats.size) &&
      sameInodeAndCtime(previous, stats) &&
      sameTime(previous.mtime, timestampFromNs(stats.mtimeNs)) &&
      previous.content.every((p) => typeof p === 'number' || this.writer.has(p))
    ) {
      return previous.content;
    }
    // Hard links to one inode are read once; every link records the same content.
    const linkKey = stats.nlink > 1n ? `${stats.dev}:${stats.ino}` : undefined;
    const known = linkKey ? this.hardLinks.get(linkKey) : undefined;
    if (known) return known;
    const reading = this.readFile(path, stats);
    if (linkKey) this.hardLinks.set(linkKey, reading);
    return reading;
  }

  private async readFile(path: Buffer, stats: BigIntStats): Promise<readonly ContentPiece[]> {
    this.filesRead += 1;
    this.progress.currentFile = path.toString();
    const maxChunk = this.vault.config.chunker.maxSize;
    const read = (): ReturnType<typeof saveFileContent> =>
      saveFileContent(
        path,
        Number(stats.size),
        this.chunker,
        maxChunk,
        this.writer,
        (n) => (this.progress.bytesRead += n),
        this.options.signal,
      );
    // Directory walks nest their concurrency; file reads are bounded globally, so memory holds
    // at most a few read windows however wide and deep the tree is. Large files, whose windows
    // are the largest chunk size, read one at a time.
    const { content } = await this.fileReads.run(() =>
      isLargeFile(Number(stats.size)) ? this.largeReads.run(read) : read(),
    );
    return content;
  }

  private baseNode(
    name: Buffer,
    type: NodeType,
    s: BigIntStats,
    extra: Partial<TreeNode>,
  ): TreeNode {
    const uid = Number(s.uid);
    const gid = Number(s.gid);
    const user = this.names.user(uid);
    const group = this.names.group(gid);
    return {
      name,
      type,
      mode: Number(s.mode) & 0o7777,
      uid,
      gid,
      ...(user !== undefined ? { user } : {}),
      ...(group !== undefined ? { group } : {}),
      mtime: timestampFromNs(s.mtimeNs),
      ctime: timestampFromNs(s.ctimeNs),
      size: type === 'file' ? Number(s.size) : 0,
      inode: Number(s.ino),
      dev: Number(s.dev),
      nlink: Number(s.nlink),
      ...extra,
    };
  }

  private async loadTree(id: string): Promise<Map<string, TreeNode>> {
    const nodes = decodeTree(
      await this.reader.load(id, 'tree', this.options.signal),
      `tree ${id.slice(0, 12)}`,
    );
    return new Map(nodes.map((n) => [n.name.toString('latin1'), n]));
  }

  private reportError(path: Buffer, error: unknown): void {
    this.progress.errors += 1;
    this.options.onError?.(path.toString(), error);
  }
}

const SLASH = Buffer.from('/');

type Trie = Map<string, Trie | 'leaf'>;

/** Builds the directory levels leading to each backed-up path; a path inside another is dropped. */
function buildTrie(paths: readonly string[]): Trie {
  const root: Trie = new Map();
  for (const path of paths) {
    const parts = path.split('/').filter((p) => p !== '');
    let level: Trie | 'leaf' = root;
    for (let i = 0; i < parts.length && level !== 'leaf'; i += 1) {
      const part = parts[i]!;
      if (i === parts.length - 1) {
        level.set(part, 'leaf');
      } else {
        let next: Trie | 'leaf' | undefined = level.get(part);
        if (next === undefined) {
          next = new Map();
          level.set(part, next);
        }
        level = next;
      }
    }
  }
  return root;
}

/** Every node equals the parent tree's entry of its name, and the parent has no others. */
function sameEntries(nodes: readonly TreeNode[], parent: ReadonlyMap<string, TreeNode>): boolean {
  if (nodes.length !== parent.size) return false;
  return nodes.every((node) => {
    const previous = parent.get(node.name.toString('latin1'));
    return previous !== undefined && sameNode(node, previous);
  });
}

/**
 * Extended attributes of an entry. Setting or removing one changes the inode's ctime, so an
 * entry whose inode and ctime match the parent point's keeps the parent's attributes without
 * a listxattr call per entry.
 */
function xattrsOf(
  path: Buffer,
  stats: BigIntStats,
  previous: TreeNode | undefined,
): { xattrs?: Record<string, Buffer> } {
  const unchanged =
    previous !== undefined &&
    previous.type === nodeType(stats) &&
    sameInodeAndCtime(previous, stats);
  const xattrs = unchanged ? previous.xattrs : readXattrs(path);
  return xattrs ? { xattrs } : {};
}

/** The parent point's entry is the same inode, and nothing about it changed since (ctime). */
function sameInodeAndCtime(previous: TreeNode, stats: BigIntStats): boolean {
  return (
    previous.inode === Number(stats.ino) && sameTime(previous.ctime, timestampFromNs(stats.ctimeNs))
  );
}

function nodeType(s: BigIntStats): NodeType {
  if (s.isFile()) return 'file';
  if (s.isDirectory()) return 'dir';
  if (s.isSymbolicLink()) return 'symlink';
  if (s.isFIFO()) return 'fifo';
  if (s.isSocket()) return 'socket';
  if (s.isCharacterDevice()) return 'chardev';
  return 'blockdev';
}

async function lstatOrThrow(path: string): Promise<void> {
  try {
    await lstat(path);
  } catch (error) {
    throw new HoldfastError(
      'SOURCE_UNREADABLE',
      `Cannot back up ${path}: ${describeError(error)}`,
      { cause: error },
    );
  }
}
