import { createHash } from 'node:crypto';
import { forEachLimit, isHoldfastError, Semaphore, throwIfAborted } from '../core/index.js';
import { unsealBlob } from './blob-codec.js';
import { BlobReader } from './blob-reader.js';
import {
  CheckFindings,
  errorClause,
  type AffectedPoint,
  type CheckReport,
} from './check-report.js';
import { blobIdOf, type RandomSource } from './crypto.js';
import { LOCK_STALE_MS, type LockInfo } from './locks.js';
import {
  PACK_TRAILER_SIZE,
  packObjectName,
  parsePackHeader,
  parsePackTrailer,
  type PackedBlob,
} from './pack.js';
import { decodePoint, type Point } from './point.js';
import { decodeTree, type TreeNode } from './tree.js';
import type { BlobLocation } from './vault-index.js';
import type { Vault } from './vault.js';

/** Phases of a check, in the order they run ('data' only with `readDataFraction`). */
export const CHECK_PHASES = ['index', 'packs', 'data', 'points'] as const;
/** One of {@link CHECK_PHASES}. */
export type CheckPhase = (typeof CHECK_PHASES)[number];

/** Options of {@link checkVault}. */
export interface CheckOptions {
  /**
   * Fraction 0..1 of the packs to download and authenticate in full; 0 (the default) checks
   * structure only. Packs are picked with the vault's random source, so tests are repeatable.
   */
  readonly readDataFraction?: number;
  readonly signal?: AbortSignal;
  /** Called as each phase advances. */
  readonly onProgress?: (p: { phase: CheckPhase; done: number; total: number }) => void;
}

// Packs are downloaded whole, so memory is this many packs; tree reads are small range reads.
const PACK_READ_CONCURRENCY = 2;
const TREE_READ_CONCURRENCY = 8;
// A file name cannot be empty, so '' can stand for "the whole directory" in tree summaries.
const WHOLE_DIRECTORY = '';
const NOTHING: readonly string[] = Object.freeze([]);

/**
 * Checks a vault without changing it: index files, the presence and size of every pack, every
 * recovery point and the trees and data blobs it references, stale locks, and (with
 * `readDataFraction`) the full content of a sample of packs. Damage is reported, not thrown;
 * backend failures and cancellation still throw.
 *
 * The vault SHOULD be opened without loading its index: the checker loads it itself so that
 * damaged index files become problems instead of failures. Memory grows with the number of
 * blobs and trees, not with the size of the data.
 */
export async function checkVault(vault: Vault, options: CheckOptions = {}): Promise<CheckReport> {
  return new VaultCheck(vault, options).run();
}

class VaultCheck {
  private readonly found = new CheckFindings();
  private readonly reader: BlobReader;
  private readonly treeReads = new Semaphore(TREE_READ_CONCURRENCY);
  /** Tree id → paths (relative to the tree) of the files below it that cannot be restored. */
  private readonly trees = new Map<string, Promise<readonly string[]>>();
  private readonly op: { signal?: AbortSignal };
  private readonly signal: AbortSignal | undefined;

  constructor(
    private readonly vault: Vault,
    private readonly options: CheckOptions,
  ) {
    this.reader = new BlobReader(vault);
    this.signal = options.signal;
    this.op = options.signal ? { signal: options.signal } : {};
  }

  async run(): Promise<CheckReport> {
    await this.checkIndex();
    const healthy = await this.checkPacks();
    // Data damage must be known before the tree walk, so affected files include it.
    await this.readData(healthy);
    const affected = await this.checkPoints();
    await this.checkLocks();
    return this.found.report(affected);
  }

  private progress(phase: CheckPhase, done: number, total: number): void {
    this.options.onProgress?.({ phase, done, total });
  }

  private async checkIndex(): Promise<void> {
    let damaged = 0;
    await this.vault.loadIndex({
      ...this.op,
      onDamage: (name, error) => {
        damaged += 1;
        this.found.indexDamaged(name, error);
      },
    });
    this.found.stats.indexFiles = this.vault.indexFiles.size + damaged;
    this.found.stats.blobs = this.vault.index.size;
    this.progress('index', this.found.stats.indexFiles, this.found.stats.indexFiles);
  }

  /** Checks that every indexed pack exists and is long enough; returns the sound ones. */
  private async checkPacks(): Promise<string[]> {
    const listed = await this.vault.listPacks(this.options.signal);
    const extents = new Map<string, { end: number; blobs: number }>();
    for (const [, at] of this.vault.index.entries()) {
      const e = extents.get(at.pack) ?? { end: 0, blobs: 0 };
      extents.set(at.pack, { end: Math.max(e.end, at.offset + at.length), blobs: e.blobs + 1 });
    }
    const packs = [...this.vault.index.packs()].sort();
    this.progress('packs', 0, packs.length);
    // Bytes of each broken pack that are still there: blobs ending past it are lost.
    const intact = new Map<string, number>();
    const healthy: string[] = [];
    for (const pack of packs) {
      const size = listed.get(pack);
      listed.delete(pack);
      const { end, blobs } = extents.get(pack) ?? { end: 0, blobs: 0 };
      if (size === undefined) {
        intact.set(pack, 0);
        this.found.packMissing(pack, blobs);
      } else if (size < end + PACK_TRAILER_SIZE) {
        intact.set(pack, size);
        this.found.packTruncated(pack, size, end + PACK_TRAILER_SIZE);
      } else {
        healthy.push(pack);
      }
    }
    for (const [id, at] of this.vault.index.entries()) {
      const kept = intact.get(at.pack);
      if (kept !== undefined && at.offset + at.length > kept) this.found.damagedBlobs.add(id);
    }
    for (const unindexed of listed.keys()) this.found.packUnindexed(unindexed);
    this.found.stats.packs = packs.length;
    this.progress('packs', packs.length, packs.length);
    return healthy;
  }

  /** Downloads and verifies a sample of the sound packs, one or two at a time. */
  private async readData(healthy: readonly string[]): Promise<void> {
    const fraction = Math.min(this.options.readDataFraction ?? 0, 1);
    if (!(fraction > 0) || healthy.length === 0) return;
    const chosen = sample(healthy, Math.ceil(fraction * healthy.length), this.vault.random);
    const blobsOf = new Map<string, Array<[string, BlobLocation]>>(chosen.map((p) => [p, []]));
    for (const entry of this.vault.index.entries()) blobsOf.get(entry[1].pack)?.push(entry);
    let done = 0;
    this.progress('data', 0, chosen.length);
    await forEachLimit(chosen, PACK_READ_CONCURRENCY, async (pack) => {
      throwIfAborted(this.signal);
      await this.readPack(pack, blobsOf.get(pack) ?? []);
      blobsOf.delete(pack);
      done += 1;
      this.progress('data', done, chosen.length);
    });
  }

  private async readPack(
    pack: string,
    indexed: ReadonlyArray<[string, BlobLocation]>,
  ): Promise<void> {
    const bytes = await this.vault.backend.get(packObjectName(pack), this.op);
    this.found.stats.packsRead += 1;
    this.found.stats.bytesRead += bytes.byteLength;
    const faults: string[] = [];
    if (createHash('sha256').update(bytes).digest('hex') !== pack) {
      faults.push('its bytes do not match its name (SHA-256)');
    }
    const header = this.readHeader(pack, bytes, faults);
    const inHeader = new Map(header?.map((b): [string, PackedBlob] => [b.id, b]));
    let disagree = 0;
    let damaged = 0;
    // The index's locations are what restores read, so those are verified whatever the header says.
    for (const [id, at] of indexed) {
      const h = inHeader.get(id);
      if (header && (!h || placeOf(h) !== placeOf(at))) disagree += 1;
      const fault = this.verifyBlob(bytes, id, at);
      if (fault === undefined) continue;
      this.found.blobDamaged(id, at.type, pack, fault);
      damaged += 1;
    }
    if (damaged > 0) faults.push(`${damaged} of its ${indexed.length} blobs failed verification`);
    if (disagree > 0) faults.push(`its header disagrees with the index on ${disagree} blob(s)`);
    for (const b of header ?? []) {
      // Copies the index reads from another pack: damage here loses nothing, but is damage.
      if (this.vault.index.get(b.id)?.pack === pack) continue;
      const fault = this.verifyBlob(bytes, b.id, b);
      if (fault !== undefined)
        faults.push(`its extra copy of blob ${b.id.slice(0, 12)} is damaged`);
    }
    if (faults.length > 0) this.found.packDamaged(pack, faults);
  }

  private readHeader(pack: string, bytes: Buffer, faults: string[]): PackedBlob[] | undefined {
    try {
      const trailerAt = bytes.byteLength - PACK_TRAILER_SIZE;
      const length = parsePackTrailer(bytes.subarray(Math.max(trailerAt, 0)), pack, bytes.length);
      const key = this.vault.keys.encryption;
      return parsePackHeader(key, bytes.subarray(trailerAt - length, trailerAt), pack, trailerAt);
    } catch (error) {
      faults.push(`its header cannot be read (${errorClause(error)})`);
      return undefined;
    }
  }

  /** Why a sealed blob is bad, or undefined when it authenticates and hashes to its id. */
  private verifyBlob(
    bytes: Buffer,
    id: string,
    at: Omit<BlobLocation, 'pack'>,
  ): string | undefined {
    const end = at.offset + at.length;
    if (end > bytes.byteLength) return 'it lies past the end of the pack';
    let plain: Buffer;
    try {
      plain = unsealBlob(this.vault.keys.encryption, at.type, id, bytes.subarray(at.offset, end));
    } catch (error) {
      return errorClause(error);
    } finally {
      this.found.stats.blobsRead += 1;
    }
    if (blobIdOf(this.vault.keys.id, plain) !== id) return 'its content does not match its id';
    if (plain.byteLength !== at.rawLength)
      return `it holds ${plain.byteLength} bytes, not ${at.rawLength}`;
    return undefined;
  }

  /** Reads every point and walks its trees; returns the points with unrestorable files. */
  private async checkPoints(): Promise<AffectedPoint[]> {
    const ids = (await this.vault.listObjects('point', this.signal)).sort();
    const affected: AffectedPoint[] = [];
    this.progress('points', 0, ids.length);
    for (const [i, id] of ids.entries()) {
      throwIfAborted(this.signal);
      const point = await this.loadPoint(id);
      if (point) {
        this.found.stats.points += 1;
        const bad = await this.summarizeTree(point.tree, id, '');
        if (bad.length > 0) {
          affected.push({ point: id, time: point.time, paths: bad.map((p) => `/${p}`).sort() });
        }
      }
      this.progress('points', i + 1, ids.length);
    }
    return affected;
  }

  private async loadPoint(id: string): Promise<Point | undefined> {
    try {
      return decodePoint(id, await this.vault.loadObject('point', id, this.signal));
    } catch (error) {
      // A point forgotten while the check runs is simply gone.
      if (isHoldfastError(error, 'BACKEND_NOT_FOUND')) return undefined;
      if (!isHoldfastError(error, 'VAULT_INTEGRITY')) throw error;
      this.found.pointDamaged(id, error);
      return undefined;
    }
  }

  /** Paths below a tree that cannot be restored; each tree is read once however often used. */
  private summarizeTree(tree: string, point: string, path: string): Promise<readonly string[]> {
    let summary = this.trees.get(tree);
    if (!summary) {
      summary = this.walkTree(tree, point, path);
      this.trees.set(tree, summary);
    }
    return summary;
  }

  private async walkTree(tree: string, point: string, path: string): Promise<readonly string[]> {
    const nodes = await this.loadTree(tree, point, path);
    if (!nodes) return [WHOLE_DIRECTORY];
    const bad: string[] = [];
    const dirs: Array<{ name: string; subtree: string }> = [];
    for (const node of nodes) {
      const name = node.name.toString();
      if (node.type === 'dir' && node.subtree) dirs.push({ name, subtree: node.subtree });
      if (node.type !== 'file') continue;
      let broken = false;
      // Every piece is looked at, not just the first bad one, so each missing blob is reported.
      for (const piece of node.content ?? []) {
        if (typeof piece === 'string' && !this.dataUsable(piece, point, join(path, name))) {
          broken = true;
        }
      }
      if (broken) bad.push(name);
    }
    const below = await Promise.all(
      dirs.map(async ({ name, subtree }) =>
        (await this.summarizeTree(subtree, point, join(path, name))).map((p) => join(name, p)),
      ),
    );
    const all = bad.concat(...below);
    return all.length === 0 ? NOTHING : all;
  }

  private async loadTree(
    tree: string,
    point: string,
    path: string,
  ): Promise<TreeNode[] | undefined> {
    let fault: string;
    if (this.found.damagedBlobs.has(tree)) {
      fault = 'is in a missing or damaged pack';
    } else if (!this.vault.index.has(tree)) {
      fault = 'is in no index';
    } else {
      try {
        const plain = await this.treeReads.run(() => this.reader.load(tree, 'tree', this.signal));
        const nodes = decodeTree(plain, `Tree ${tree.slice(0, 12)}`);
        this.found.stats.trees += 1;
        return nodes;
      } catch (error) {
        if (!isDamage(error)) throw error;
        fault = `cannot be read: ${errorClause(error)}`;
      }
    }
    this.found.treeDamaged(tree, point, `/${path}`, fault);
    return undefined;
  }

  /** False (reporting it once) when a data blob is not in the index or known damaged. */
  private dataUsable(id: string, point: string, path: string): boolean {
    if (this.found.damagedBlobs.has(id)) return false;
    if (this.vault.index.has(id)) return true;
    this.found.blobMissing(id, point, `/${path}`);
    return false;
  }

  private async checkLocks(): Promise<void> {
    for (const name of await this.vault.listObjects('lock', this.signal)) {
      let info: Partial<LockInfo>;
      try {
        info = (await this.vault.loadObject('lock', name, this.signal)) as Partial<LockInfo>;
      } catch (error) {
        if (isHoldfastError(error, 'BACKEND_NOT_FOUND')) continue;
        if (!isHoldfastError(error, 'VAULT_INTEGRITY')) throw error;
        this.found.lockDamaged(name, error);
        continue;
      }
      const idle = this.vault.clock.now() - Number(info.refreshed);
      // NaN (a lock without a time) counts as stale: nobody refreshes it either.
      if (!(idle <= LOCK_STALE_MS)) this.found.lockStale(name, info, idle);
    }
  }
}

function join(dir: string, name: string): string {
  if (name === WHOLE_DIRECTORY) return dir;
  return dir === '' ? name : `${dir}/${name}`;
}

function placeOf(b: Omit<BlobLocation, 'pack'>): string {
  return `${b.type} ${b.offset} ${b.length} ${b.rawLength}`;
}

/** Damage the checker reports rather than throws; other errors (I/O, cancel) end the check. */
function isDamage(error: unknown): boolean {
  return isHoldfastError(error, 'VAULT_INTEGRITY') || isHoldfastError(error, 'BACKEND_NOT_FOUND');
}

/** `count` distinct items picked uniformly (a partial Fisher–Yates shuffle of a copy). */
function sample<T>(items: readonly T[], count: number, random: RandomSource): T[] {
  if (count >= items.length) return [...items];
  const pool = [...items];
  for (let i = 0; i < count; i += 1) {
    const j = i + (random(4).readUInt32LE(0) % (pool.length - i));
    [pool[i], pool[j]] = [pool[j]!, pool[i]!];
  }
  return pool.slice(0, count);
}
