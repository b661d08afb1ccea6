import { closeSync, ftruncateSync, linkSync, openSync, type BigIntStats } from 'node:fs';
import { describeError, forEachLimit, HoldfastError } from '../core/index.js';
import { InlineBlobOpener, type BlobOpener } from './blob-opener.js';
import { BlobReader, packReads } from './blob-reader.js';
import type { Point } from './point.js';
import {
  planRestore,
  unsafeEntryError,
  type PlannedEntry,
  type RestoreFilter,
} from './restore-plan.js';
import {
  applyFileMetadata,
  applyPathMetadata,
  clearPath,
  CREATE_FLAGS,
  createDirectory,
  createMode,
  createSpecial,
  ensureDirectory,
  looksRestored,
  lstatIfExists,
  type OverwriteMode,
} from './restore-fs.js';
import type { BlobLocation } from './vault-index.js';
import type { Vault } from './vault.js';

/** Options of a restore. */
export interface RestoreOptions extends RestoreFilter {
  readonly target: string;
  readonly overwrite?: OverwriteMode;
  readonly signal?: AbortSignal;
  /** Where blobs are decrypted and decompressed (default: on this thread). */
  readonly opener?: BlobOpener;
  /** Per-entry failures; the restore goes on with the other entries. */
  readonly onError?: (path: string, error: unknown) => void;
}

/** Live counters of a running restore. */
export interface RestoreProgress {
  files: number;
  dirs: number;
  others: number;
  bytes: number;
  skipped: number;
  errors: number;
  currentFile: string;
}

interface FileJob {
  readonly entry: PlannedEntry;
  readonly target: Buffer;
  fd?: number;
  remaining: number;
  failed: boolean;
  /** Bytes the content pieces add up to (the file may have changed size while backed up). */
  contentLength?: number;
}

interface BlobTarget {
  readonly job: FileJob;
  readonly offset: number;
}

/** One blob a batch needs, and where its bytes go. */
interface WantedBlob {
  readonly id: string;
  readonly location: BlobLocation;
  readonly targets: BlobTarget[];
}

/**
 * Files planned before their data is fetched; bounds memory on huge trees. Planned files hold
 * their tree nodes and paths (the largest part of a restore's heap); more files per batch would
 * only save the few reads of packs whose blobs two batches share.
 */
const BATCH_FILES = 5_000;

/** Ranged reads of {@link packReads} being read, opened or written at once. */
const READS_IN_FLIGHT = 4;

/** Every ranged read a batch needs, pack by pack, in pack order within each pack. */
function* packReadsOf(
  byPack: ReadonlyMap<string, ReadonlyMap<string, WantedBlob>>,
): Generator<{ pack: string; run: WantedBlob[] }> {
  for (const [pack, blobs] of byPack) {
    for (const run of packReads([...blobs.values()])) yield { pack, run };
  }
}

/**
 * Restores a point into a target directory. Data is fetched pack by pack (one ranged read per
 * pack for all the blobs a batch needs), each blob authenticated before it is written; files are
 * sparse where the point has holes; metadata is applied after content, directories last.
 */
export class Restorer {
  readonly progress: RestoreProgress = {
    files: 0,
    dirs: 0,
    others: 0,
    bytes: 0,
    skipped: 0,
    errors: 0,
    currentFile: '',
  };
  private readonly reader: BlobReader;
  private readonly opener: BlobOpener;
  private readonly dirs: Array<{ path: Buffer; entry: PlannedEntry }> = [];
  private readonly blocked: Buffer[] = [];
  private readonly firstLink = new Map<string, Buffer>();
  private readonly pendingLinks: Array<{ from: string; to: Buffer; entry: PlannedEntry }> = [];
  /**
   * Directories this restore created, and whether it created the target itself. Nothing can
   * already be inside them, so their entries skip the lstat that looks for something in the
   * way: on a restore into a new directory that is one system call fewer per entry. Should
   * another process put something there meanwhile, the exclusive creates (O_EXCL, mkdir,
   * symlink, link) fail on it instead of replacing it.
   */
  private readonly createdDirs = new Set<PlannedEntry>();
  private createdTarget = false;
  private readonly targetRoot: Buffer;

  constructor(
    private readonly vault: Vault,
    private readonly point: Point,
    private readonly options: RestoreOptions,
  ) {
    this.reader = new BlobReader(vault);
    this.opener = options.opener ?? new InlineBlobOpener(vault.keys.encryption);
    this.targetRoot = Buffer.from(options.target.replace(/\/+$/, '') || '/');
  }

  /** Runs the restore; per-entry problems go to `onError` and the counters. */
  async run(): Promise<RestoreProgress> {
    const root = await Promise.resolve()
      .then(() => ensureDirectory(this.targetRoot, 'never'))
      .catch((error: unknown) => {
        throw new HoldfastError(
          'RESTORE_TARGET_INVALID',
          `Cannot use ${this.options.target} as restore target: ${describeError(error)}`,
          { cause: error },
        );
      });
    if (root === 'blocked') {
      throw new HoldfastError(
        'RESTORE_TARGET_INVALID',
        `The restore target ${this.options.target} exists and is not a directory.`,
      );
    }
    this.createdTarget = root === 'created';
    let batch: FileJob[] = [];
    const plan = planRestore(
      this.reader,
      this.point.tree,
      this.options,
      (path, reason) => this.fail(path, unsafeEntryError(path, reason)),
      this.options.signal,
    );
    for await (const entry of plan) {
      const job = this.place(entry);
      if (job) batch.push(job);
      if (batch.length >= BATCH_FILES) {
        await this.writeContent(batch);
        batch = [];
      }
    }
    await this.writeContent(batch);
    for (const pending of this.pendingLinks) this.makeLink(pending);
    // Deepest first, so setting a child's times does not change its parent's mtime afterwards.
    this.dirs.sort((a, b) => b.entry.depth - a.entry.depth);
    for (const dir of this.dirs) {
      await Promise.resolve(dir)
        .then((d) => applyPathMetadata(d.path, d.entry.node))
        .catch((error: unknown) => this.fail(dir.path.toString(), error));
    }
    return this.progress;
  }

  /** Creates directories, links and special files at once; returns a job for regular files. */
  private place(entry: PlannedEntry): FileJob | undefined {
    const target = Buffer.concat([this.targetRoot, SLASH, entry.path]);
    const display = target.toString();
    if (
      this.blocked.some(
        (b) =>
          entry.path.byteLength > b.byteLength &&
          entry.path[b.byteLength] === 0x2f &&
          entry.path.subarray(0, b.byteLength).equals(b),
      )
    ) {
      return undefined;
    }
    const overwrite = this.options.overwrite ?? 'if-changed';
    const node = entry.node;
    const inNewDir = entry.parent ? this.createdDirs.has(entry.parent) : this.createdTarget;
    try {
      if (node.type === 'dir') {
        const outcome = inNewDir ? createDirectory(target) : ensureDirectory(target, overwrite);
        if (outcome === 'blocked') {
          this.blocked.push(entry.path);
          this.progress.skipped += 1;
          return undefined;
        }
        if (outcome === 'created') this.createdDirs.add(entry);
        this.dirs.push({ path: target, entry });
        this.progress.dirs += 1;
        return undefined;
      }
      const existing = inNewDir ? undefined : lstatIfExists(target);
      const key = node.type === 'file' && node.nlink > 1 ? `${node.dev}:${node.inode}` : undefined;
      if (existing) {
        if (
          overwrite === 'never' ||
          (overwrite === 'if-changed' &&
            node.type === 'file' &&
            looksRestored(existing, node) &&
            this.keepsLinkGroup(key, target, existing))
        ) {
          this.progress.skipped += 1;
          return undefined;
        }
        clearPath(target, existing);
      }
      if (node.type === 'file') {
        this.progress.currentFile = display;
        const first = key ? this.firstLink.get(key) : undefined;
        if (key && first) {
          this.pendingLinks.push({ from: key, to: target, entry });
          return undefined;
        }
        if (key) this.firstLink.set(key, target);
        return { entry, target, remaining: 0, failed: false };
      }
      createSpecial(target, node);
      applyPathMetadata(target, node);
      this.progress.others += 1;
    } catch (error) {
      // A directory that could not be made is not entered: whatever stands at its path (put
      // there between the check and the mkdir, say a symlink) must not receive its entries,
      // which are created by path and protected by O_NOFOLLOW in their last component only.
      if (node.type === 'dir') this.blocked.push(entry.path);
      this.fail(display, error);
    }
    return undefined;
  }

  /**
   * Whether an existing, complete file may stay as it is with respect to its hard-link group:
   * the group's first member always may (and becomes the one the others link to); a later
   * member only when it already is the same inode, so that a resumed restore never leaves a
   * group split into copies.
   */
  private keepsLinkGroup(key: string | undefined, target: Buffer, existing: BigIntStats): boolean {
    if (key === undefined) return true;
    const first = this.firstLink.get(key);
    if (first === undefined) {
      this.firstLink.set(key, target);
      return true;
    }
    const linked = lstatIfExists(first);
    return linked !== undefined && linked.ino === existing.ino && linked.dev === existing.dev;
  }

  private makeLink(pending: { from: string; to: Buffer; entry: PlannedEntry }): void {
    const source = this.firstLink.get(pending.from);
    try {
      if (!source) throw new HoldfastError('INTERNAL', 'hard link source missing');
      linkSync(source, pending.to);
      this.progress.files += 1;
    } catch (error) {
      this.fail(pending.to.toString(), error);
    }
  }

  /** Fetches the batch's blobs pack by pack and writes them where they belong. */
  private async writeContent(jobs: FileJob[]): Promise<void> {
    const byPack = new Map<string, Map<string, WantedBlob>>();
    for (const job of jobs) {
      let offset = 0;
      try {
        for (const piece of job.entry.node.content ?? []) {
          if (typeof piece === 'number') {
            offset += piece;
            continue;
          }
          const location = this.reader.locate(piece);
          let blobs = byPack.get(location.pack);
          if (!blobs) byPack.set(location.pack, (blobs = new Map()));
          let blob = blobs.get(piece);
          if (!blob) blobs.set(piece, (blob = { id: piece, location, targets: [] }));
          blob.targets.push({ job, offset });
          job.remaining += 1;
          offset += location.rawLength;
        }
        job.contentLength = offset;
      } catch (error) {
        job.failed = true;
        this.fail(job.target.toString(), error);
      }
    }
    // Files with no stored data (empty, or only holes) are complete once created.
    for (const job of jobs) if (!job.failed && job.remaining === 0) this.finishFile(job);
    // A few reads of at most PACK_READ_BYTES in flight: one being read, some being opened and
    // written on the opener's threads, so reading, decompression and writing overlap while
    // memory stays a few MiB per read whatever the pack size. The plaintext is written by the
    // thread that opened it; this thread only creates and finishes files.
    await forEachLimit(packReadsOf(byPack), READS_IN_FLIGHT, async ({ pack, run }) => {
      // Files are opened once their span has been read, so data that cannot be read leaves no
      // empty file behind; a span that could not be read fails every file it was for.
      const sent = new Map<WantedBlob, BlobTarget[]>();
      const results = await this.reader.writePackBlobs(
        pack,
        run,
        (blob) => {
          const targets = blob.targets.filter((t) => this.readyToWrite(t.job));
          sent.set(blob, targets);
          return targets.map((t) => ({ fd: t.job.fd ?? -1, position: t.offset }));
        },
        this.opener,
        this.options.signal,
      );
      for (const { blob, error, failures } of results) {
        (sent.get(blob) ?? blob.targets).forEach((target, i) => {
          const failure = failures ? failures[i] : (error ?? new Error('blob was not opened'));
          this.recordWrite(target.job, blob.location.rawLength, failure);
        });
      }
    });
    // Jobs that failed mid-way still hold open handles; no write to them is in flight any more.
    for (const job of jobs) if (job.failed && job.fd !== undefined) closeSync(job.fd);
  }

  /** Opens a file before data for it is sent to be written; false when it cannot take any. */
  private readyToWrite(job: FileJob): boolean {
    if (job.failed) return false;
    try {
      this.openJob(job);
      return true;
    } catch (failure) {
      this.failJob(job, failure);
      return false;
    }
  }

  /** Counts one written blob of a file, or fails the file; finishes it after its last blob. */
  private recordWrite(job: FileJob, bytes: number, failure: unknown): void {
    if (job.failed) return;
    if (failure !== undefined) {
      this.failJob(job, failure);
      return;
    }
    this.progress.bytes += bytes;
    job.remaining -= 1;
    if (job.remaining === 0) {
      try {
        this.finishFile(job);
      } catch (error) {
        this.failJob(job, error);
      }
    }
  }

  /** Marks a file failed; a full target stops the whole restore, since every later write fails too. */
  private failJob(job: FileJob, failure: unknown): void {
    job.failed = true;
    if (failure instanceof HoldfastError && failure.code === 'BACKEND_NO_SPACE') throw failure;
    if ((failure as NodeJS.ErrnoException).code === 'ENOSPC') {
      throw new HoldfastError(
        'RESTORE_WRITE_FAILED',
        `The restore target is full while writing ${job.target.toString()}. Free space and run the restore again; finished files are skipped.`,
        { cause: failure },
      );
    }
    this.fail(job.target.toString(), failure);
  }

  private openJob(job: FileJob): number {
    if (job.fd === undefined) {
      job.fd = openSync(job.target, CREATE_FLAGS, createMode(job.entry.node));
      // Setting the size first leaves every unwritten range a hole: sparse where the point is.
      // Files without holes get their size from the writes alone: one journaled change fewer.
      if (
        job.contentLength !== job.entry.node.size ||
        job.entry.node.content?.some((p) => typeof p === 'number')
      ) {
        ftruncateSync(job.fd, job.entry.node.size);
      }
    }
    return job.fd;
  }

  private finishFile(job: FileJob): void {
    const fd = this.openJob(job);
    try {
      applyFileMetadata(fd, job.target, job.entry.node);
    } finally {
      closeSync(fd);
      delete job.fd;
    }
    this.progress.files += 1;
  }

  private fail(path: string, error: unknown): void {
    this.progress.errors += 1;
    this.options.onError?.(path, error);
  }
}

const SLASH = Buffer.from('/');
