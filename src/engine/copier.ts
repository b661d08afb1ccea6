/**
 * Copy: recovery points from one vault into another, typically an off-site vault with its own
 * passphrase. Blob ids are keyed hashes (HMAC with each vault's id key), so every blob gets a
 * new id in the target and every tree is rewritten bottom-up to name the new ids. Data is read
 * as plaintext from the source and deduplicated, sealed and packed for the target by a
 * {@link BlobWriter}, as a backup would.
 *
 * Ordering (docs/vault-format.md §9): a point's manifest is saved only after the writer has
 * flushed every pack and index file its trees need, so an interrupted copy leaves at most
 * unreferenced packs in the target, never a point that refers to missing data.
 */
import {
  forEachLimit,
  HoldfastError,
  isHoldfastError,
  Semaphore,
  throwIfAborted,
} from '../core/index.js';
import { BlobReader } from './blob-reader.js';
import type { BlobSealer } from './blob-sealer.js';
import { BlobWriter } from './blob-writer.js';
import { acquireLock, type VaultLock } from './locks.js';
import { decodePoint, type Point, type PointManifest } from './point.js';
import { decodeTree, encodeTree, type ContentPiece, type TreeNode } from './tree.js';
import type { BlobLocation } from './vault-index.js';
import type { Vault } from './vault.js';

/** Options of {@link copyPoints}. */
export interface CopyOptions {
  /** Seals blobs with the target vault's key. */
  readonly sealer: BlobSealer;
  /** How long to wait for an exclusive lock (a prune) on either vault (default 0). */
  readonly lockWaitMs?: number;
  readonly onProgress?: (progress: CopyProgress) => void;
  readonly signal?: AbortSignal;
}

/** Counters of a running copy. */
export interface CopyProgress {
  /** Points finished (copied or skipped) and asked for. */
  readonly points: number;
  readonly pointsTotal: number;
  /** Data blobs read from the source and their plaintext bytes. */
  readonly blobs: number;
  readonly bytes: number;
}

/** The outcome for one source point: the target point holding it, and whether it was there. */
export interface CopiedPoint {
  readonly source: string;
  readonly target: string;
  /** True when the target already had this point; nothing was written for it. */
  readonly skipped: boolean;
}

/**
 * Copies `points` of `source` into `target`, oldest first so that a point's parent, when also
 * copied, can be mapped (otherwise `parent` is dropped). Both vaults MUST have their index
 * loaded. A point counts as already present when the target has one with the same time, host
 * and paths whose trees have the same entries with the same metadata everywhere (see
 * {@link PointCopier} for why blob ids are not compared). Holds shared locks on both vaults.
 */
export async function copyPoints(
  source: Vault,
  target: Vault,
  points: readonly Point[],
  options: CopyOptions,
): Promise<CopiedPoint[]> {
  if (source.id === target.id)
    throw new HoldfastError('USAGE_INVALID', 'Source and target are the same vault.');
  const locks: VaultLock[] = [];
  try {
    for (const [vault, role] of [
      [source, 'source'],
      [target, 'target'],
    ] as const) {
      locks.push(
        await acquireLock(vault, {
          exclusive: false,
          purpose: `copy (${role})`,
          waitMs: options.lockWaitMs ?? 0,
          ...(options.signal ? { signal: options.signal } : {}),
        }),
      );
    }
    return await new PointCopier(source, target, options).run(points);
  } finally {
    for (const lock of locks.reverse()) await lock.release();
  }
}

// Stands for every blob id when comparing trees of two vaults, whose ids never match.
const ANY_ID = '0'.repeat(64);

/**
 * One copy run. Blob ids of the two vaults cannot be compared, and computing the target id of
 * a source blob means reading its data; so "already present" compares trees entry by entry
 * (names, types, sizes, modes, owners, times, inode, link targets, holes) — the same evidence a
 * backup trusts to reuse an unchanged file — reading only trees. Within a run, `ids` maps
 * every source blob id seen to its target id, so shared data is read once.
 */
class PointCopier {
  private readonly sourceReader: BlobReader;
  private readonly targetReader: BlobReader;
  private readonly writer: BlobWriter;
  private readonly ids = new Map<string, string>();
  /** Target points by time, host and paths. */
  private readonly existing = new Map<string, Point[]>();
  // Bounds ranged reads in flight (each up to a pack), however wide the trees fan out.
  private readonly reads = new Semaphore(4);
  private progress: CopyProgress = { points: 0, pointsTotal: 0, blobs: 0, bytes: 0 };
  /**
   * True when the two vaults share working keys (a vault and its snapshot store): a blob has
   * the same id in both, so data the target already holds is never read. Trees are still
   * walked: a tree in the target's index does not prove its children are there too.
   */
  private readonly sharedKeys: boolean;

  constructor(
    private readonly source: Vault,
    private readonly target: Vault,
    private readonly options: CopyOptions,
  ) {
    this.sourceReader = new BlobReader(source);
    this.targetReader = new BlobReader(target);
    const signal = options.signal;
    this.writer = new BlobWriter(target, { sealer: options.sealer, ...(signal ? { signal } : {}) });
    this.sharedKeys = source.keys.id.equals(target.keys.id);
  }

  async run(points: readonly Point[]): Promise<CopiedPoint[]> {
    await this.loadExisting();
    this.progress = { ...this.progress, pointsTotal: points.length };
    const done = new Map<string, CopiedPoint>();
    const ordered = [...points].sort((a, b) => Date.parse(a.time) - Date.parse(b.time) || 0);
    for (const point of ordered) {
      if (!done.has(point.id)) done.set(point.id, await this.copyPoint(point, done));
      this.report({ points: this.progress.points + 1 });
    }
    return points.map((p) => done.get(p.id)!);
  }

  private async copyPoint(point: Point, done: Map<string, CopiedPoint>): Promise<CopiedPoint> {
    const key = pointKey(point);
    for (const candidate of this.existing.get(key) ?? []) {
      if (await this.sameTree(point.tree, candidate.tree))
        return { source: point.id, target: candidate.id, skipped: true };
    }
    const tree = await this.copyTree(point.tree);
    // The manifest is the commit point: everything it names must be durable first.
    await this.writer.flush();
    const parent = point.parent === undefined ? undefined : done.get(point.parent)?.target;
    const manifest: PointManifest = {
      v: 1,
      time: point.time,
      host: point.host,
      user: point.user,
      paths: point.paths,
      tags: point.tags,
      ...(parent !== undefined ? { parent } : {}),
      tree,
      consistency: point.consistency,
      stats: point.stats,
      program: point.program,
    };
    throwIfAborted(this.options.signal);
    const id = await this.target.saveObject('point', manifest, this.options.signal);
    this.existing.set(key, [...(this.existing.get(key) ?? []), { ...manifest, id }]);
    return { source: point.id, target: id, skipped: false };
  }

  private async loadExisting(): Promise<void> {
    const signal = this.options.signal;
    await forEachLimit(await this.target.listObjects('point', signal), 8, async (id) => {
      let point: Point;
      try {
        point = decodePoint(id, await this.target.loadObject('point', id, signal));
      } catch (error) {
        // A damaged target point cannot be a match; `check` reports it, the copy goes on.
        if (isHoldfastError(error, 'VAULT_INTEGRITY')) return;
        throw error;
      }
      const key = pointKey(point);
      this.existing.set(key, [...(this.existing.get(key) ?? []), point]);
    });
  }

  /** True when a source tree and a target tree hold the same entries, recursively. */
  private async sameTree(sourceId: string, targetId: string): Promise<boolean> {
    if (this.ids.get(sourceId) === targetId) return true;
    let theirs: TreeNode[];
    try {
      theirs = await this.loadTree(this.targetReader, targetId);
    } catch (error) {
      if (isHoldfastError(error, 'VAULT_INTEGRITY')) return false;
      throw error;
    }
    const ours = await this.loadTree(this.sourceReader, sourceId);
    if (ours.length !== theirs.length) return false;
    for (const [i, a] of ours.entries()) {
      const b = theirs[i]!;
      if (!shapeOf(a).equals(shapeOf(b))) return false;
      if (a.subtree !== undefined && !(await this.sameTree(a.subtree, b.subtree!))) return false;
    }
    return true;
  }

  /** Copies a tree and everything below it; returns its id in the target. */
  private async copyTree(sourceId: string): Promise<string> {
    const known = this.ids.get(sourceId);
    if (known !== undefined) return known;
    const nodes = await this.loadTree(this.sourceReader, sourceId);
    const copied: TreeNode[] = [];
    await forEachLimit(nodes.keys(), 8, async (i) => {
      const node = nodes[i]!;
      if (node.subtree !== undefined) {
        copied[i] = { ...node, subtree: await this.copyTree(node.subtree) };
      } else if (node.content !== undefined) {
        copied[i] = { ...node, content: await this.copyContent(node.content) };
      } else {
        copied[i] = node;
      }
    });
    const saved = await this.writer.save('tree', encodeTree(copied));
    this.ids.set(sourceId, saved.id);
    return saved.id;
  }

  /** Copies a file's data blobs, one ranged read per source pack; holes stay as they are. */
  private async copyContent(content: readonly ContentPiece[]): Promise<ContentPiece[]> {
    const byPack = new Map<string, Array<{ id: string; location: BlobLocation }>>();
    const wanted = new Set<string>();
    for (const piece of content) {
      if (typeof piece !== 'string' || this.ids.has(piece) || wanted.has(piece)) continue;
      if (this.sharedKeys && this.target.index.has(piece)) {
        this.ids.set(piece, piece);
        continue;
      }
      wanted.add(piece);
      const location = this.sourceReader.locate(piece);
      const list = byPack.get(location.pack);
      if (list) list.push({ id: piece, location });
      else byPack.set(location.pack, [{ id: piece, location }]);
    }
    for (const [pack, blobs] of byPack) {
      await this.reads.run(async () => {
        for await (const blob of this.sourceReader.loadFromPack(pack, blobs, this.options.signal)) {
          if (blob.data === undefined) throw blob.error;
          const saved = await this.writer.save('data', blob.data);
          this.ids.set(blob.id, saved.id);
          const { blobs: n, bytes } = this.progress;
          this.report({ blobs: n + 1, bytes: bytes + blob.data.byteLength });
        }
      });
    }
    return content.map((piece) => (typeof piece === 'string' ? this.ids.get(piece)! : piece));
  }

  private async loadTree(reader: BlobReader, id: string): Promise<TreeNode[]> {
    const bytes = await reader.load(id, 'tree', this.options.signal);
    return decodeTree(bytes, `tree ${id.slice(0, 12)}`);
  }

  private report(change: Partial<CopyProgress>): void {
    this.progress = { ...this.progress, ...change };
    this.options.onProgress?.(this.progress);
  }
}

function pointKey(point: Point): string {
  return JSON.stringify([point.time, point.host, [...point.paths].sort()]);
}

/** A node's encoding with every blob id replaced, so nodes of two vaults can be compared. */
function shapeOf(node: TreeNode): Buffer {
  const { content, subtree, ...rest } = node;
  return encodeTree([
    {
      ...rest,
      ...(content !== undefined
        ? { content: content.map((p) => (typeof p === 'string' ? ANY_ID : p)) }
        : {}),
      ...(subtree !== undefined ? { subtree: ANY_ID } : {}),
    },
  ]);
}
