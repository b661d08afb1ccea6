/**
 * Prune: removes the data no recovery point uses any more and rewrites packs that are mostly
 * garbage.
 *
 * Write ordering (docs/vault-format.md §9 rule 6), all under the exclusive lock:
 *  1. upload the repacked packs. A crash now leaves packs that no index names; the next prune
 *     deletes them as orphans.
 *  2. write ONE index file naming every kept and repacked pack, whose `supersedes` lists every
 *     index file read. Before it is durable the old files are authoritative, after it the new
 *     one is; every pack either names is still present.
 *  3. delete the old index files. They are superseded, so a crash midway changes nothing.
 *  4. delete the packs no longer named: unused, repacked and orphan packs. A crash midway
 *     leaves orphans for the next prune.
 * Nothing is deleted before step 2 is durable, and prune stops without deleting anything when a
 * point refers to a blob the index lacks: that is damage for `check` to report, not garbage.
 *
 * Memory grows with the number of blobs and packs (ids and locations), never with data size:
 * repacking holds at most one old pack's used blobs and one new pack at a time.
 */
import { deleteUnlessLocked } from './object-locks.js';
import { forEachTreeNode } from './tree-walk.js';
import { forEachLimit, HoldfastError, isHoldfastError, throwIfAborted } from '../core/index.js';
import { BlobReader } from './blob-reader.js';
import { unsealBlob, type BlobType } from './blob-codec.js';
import type { BlobSealer } from './blob-sealer.js';
import { acquireLock } from './locks.js';
import { PackBuilder, packObjectName, type PackedBlob } from './pack.js';
import { decodePoint } from './point.js';
import { decodeTree, type TreeNode } from './tree.js';
import { decodeIndexFile, encodeIndexFile, MasterIndex, type BlobLocation } from './vault-index.js';
import type { Vault } from './vault.js';

/** Steps of a prune, in order, as reported to `onProgress`. */
export const PRUNE_PHASES = ['index', 'trees', 'repack', 'delete'] as const;
/** One of {@link PRUNE_PHASES}. */
export type PrunePhase = (typeof PRUNE_PHASES)[number];

/** Progress of one phase: `done` of `total` items (index files, trees, packs, objects). */
export interface PruneProgress {
  readonly phase: PrunePhase;
  readonly done: number;
  /** Unknown while walking trees. */
  readonly total?: number;
}

/** Options of {@link prune}. */
export interface PruneOptions {
  /** Seals repacked blobs (compression and encryption with the vault's key). */
  readonly sealer: BlobSealer;
  /** Repack a partly used pack when its used bytes are below this fraction of it (default 0.5). */
  readonly repackThreshold?: number;
  /** Compute the report without writing or deleting anything. */
  readonly dryRun?: boolean;
  /** How long to wait for other processes' locks (default 0: fail at once with VAULT_LOCKED). */
  readonly lockWaitMs?: number;
  readonly onProgress?: (progress: PruneProgress) => void;
  readonly signal?: AbortSignal;
}

/** What a prune did, or with `dryRun` would do (byte counts of repacking are then estimates). */
export interface PruneReport {
  readonly dryRun: boolean;
  readonly points: number;
  readonly packsKept: number;
  /** Indexed packs of which no blob is used. */
  readonly packsDeleted: number;
  readonly packsRepacked: number;
  /** Packs no index file names (left by interrupted backups). */
  readonly orphanPacks: number;
  readonly packsWritten: number;
  /** Unused blobs in deleted and repacked packs (blobs inside orphan packs are not counted). */
  readonly blobsRemoved: number;
  readonly blobsRepacked: number;
  /** Old index files replaced by the one new index file. */
  readonly indexFilesReplaced: number;
  /** Bytes deleted minus bytes written. */
  readonly bytesFreed: number;
  /**
   * Objects that were to go but are under a retention lock that has not ended: left in place
   * (never asked to be deleted) for a later prune. Packs among them are not counted as freed.
   */
  readonly objectsLocked: number;
  readonly durationMs: number;
}

interface IndexState {
  /** Every index file read, live or already superseded. */
  readonly files: string[];
  /** Packs named by live index files with their blobs. */
  readonly packs: Map<string, readonly PackedBlob[]>;
  readonly index: MasterIndex;
}

interface UsedBlob {
  readonly id: string;
  readonly location: BlobLocation;
}

interface Plan {
  readonly keep: string[];
  readonly remove: Array<{ id: string; bytes: number; exists: boolean }>;
  readonly repack: Array<{ id: string; bytes: number; used: UsedBlob[]; usedBytes: number }>;
  readonly orphans: Array<{ id: string; bytes: number }>;
  blobsRemoved: number;
}

/**
 * Deletes unused data from a vault; see the file header for the write ordering. Takes the
 * exclusive lock (a shared one for `dryRun`) and reads the index afresh under it, so `vault`'s
 * own in-memory index is neither used nor updated: open the vault again before writing to it.
 */
export async function prune(vault: Vault, options: PruneOptions): Promise<PruneReport> {
  const started = vault.clock.now();
  const threshold = options.repackThreshold ?? 0.5;
  if (!(threshold >= 0 && threshold <= 1))
    throw new HoldfastError('USAGE_INVALID', 'The repack threshold must be between 0 and 1.');
  const dryRun = options.dryRun === true;
  const lock = await acquireLock(vault, {
    exclusive: !dryRun,
    purpose: dryRun ? 'prune (dry run)' : 'prune',
    waitMs: options.lockWaitMs ?? 0,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  try {
    const state = await readIndexState(vault, options);
    const { used, points } = await collectUsed(vault, state.index, options);
    const plan = classify(state, used, await vault.listPacks(options.signal), threshold);
    // One index file and nothing to drop from it: rewriting it would gain nothing.
    const rewrite = plan.remove.length + plan.repack.length > 0 || state.files.length > 1;
    // Repacked bytes are estimated by a dry run: their used blobs, sealed as they are now.
    const written = dryRun
      ? plan.repack.map((p) => ({ id: p.id, blobs: [], bytes: p.usedBytes }))
      : await repack(vault, plan.repack, options);
    const locked = dryRun
      ? new Set<string>()
      : await commit(vault, state, plan, rewrite ? written : undefined, options);
    const bytes = (list: ReadonlyArray<{ bytes: number }>): number =>
      list.reduce((n, p) => n + p.bytes, 0);
    const lockedPacks = [...plan.remove, ...plan.repack, ...plan.orphans].filter((p) =>
      locked.has(packObjectName(p.id)),
    );
    return {
      dryRun,
      points,
      packsKept: plan.keep.length,
      packsDeleted: plan.remove.length,
      packsRepacked: plan.repack.length,
      orphanPacks: plan.orphans.length,
      packsWritten: dryRun ? 0 : written.length,
      blobsRemoved: plan.blobsRemoved,
      blobsRepacked: plan.repack.reduce((n, p) => n + p.used.length, 0),
      indexFilesReplaced: rewrite ? state.files.length : 0,
      bytesFreed:
        bytes(plan.remove) +
        bytes(plan.repack) +
        bytes(plan.orphans) -
        bytes(written) -
        bytes(lockedPacks),
      objectsLocked: locked.size,
      durationMs: vault.clock.now() - started,
    };
  } finally {
    await lock.release();
  }
}

/**
 * Steps 2 to 4 of the write ordering; `written` undefined means "keep the index as it is".
 * Returns the objects left in place because they are locked.
 */
async function commit(
  vault: Vault,
  state: IndexState,
  plan: Plan,
  written: ReadonlyArray<{ id: string; blobs: readonly PackedBlob[] }> | undefined,
  options: PruneOptions,
): Promise<Set<string>> {
  const locked = new Set<string>();
  if (written) {
    const kept = plan.keep.map((id) => ({ id, blobs: state.packs.get(id) ?? [] }));
    throwIfAborted(options.signal);
    const index = encodeIndexFile({ supersedes: state.files, packs: [...kept, ...written] });
    const name = await vault.saveObject('index', index, options.signal);
    const old = state.files.filter((f) => f !== name).map((f) => `index/${f}`);
    await deleteAll(vault, old, options, locked);
  }
  const packs = [...plan.remove.filter((p) => p.exists), ...plan.repack, ...plan.orphans];
  await deleteAll(
    vault,
    packs.map((p) => packObjectName(p.id)),
    options,
    locked,
  );
  return locked;
}

async function readIndexState(vault: Vault, options: PruneOptions): Promise<IndexState> {
  const names = await vault.listObjects('index', options.signal);
  const decoded = new Map<string, ReturnType<typeof decodeIndexFile>>();
  await forEachLimit(names, 8, async (name) => {
    const value = await stopOnDamage(() => vault.loadObject('index', name, options.signal));
    decoded.set(name, decodeIndexFile(value, name));
    options.onProgress?.({ phase: 'index', done: decoded.size, total: names.length });
  });
  const superseded = new Set<string>();
  for (const file of decoded.values()) for (const s of file.supersedes) superseded.add(s);
  const packs = new Map<string, readonly PackedBlob[]>();
  const index = new MasterIndex();
  // Sorted so that which copy of a duplicated blob counts as "the" copy does not depend on the
  // order the backend lists files in.
  for (const name of [...decoded.keys()].sort()) {
    if (superseded.has(name)) continue;
    for (const pack of decoded.get(name)?.packs ?? []) {
      if (packs.has(pack.id)) continue;
      packs.set(pack.id, pack.blobs);
      index.addPack(pack.id, pack.blobs);
    }
  }
  return { files: names, packs, index };
}

/** Walks every point's trees, each tree once, and returns the ids of all blobs they use. */
async function collectUsed(
  vault: Vault,
  index: MasterIndex,
  options: PruneOptions,
): Promise<{ used: Set<string>; points: number }> {
  const ids = await vault.listObjects('point', options.signal);
  const roots = new Set<string>();
  await forEachLimit(ids, 8, async (id) => {
    const point = await stopOnDamage(async () =>
      decodePoint(id, await vault.loadObject('point', id, options.signal)),
    );
    roots.add(point.tree);
  });
  // Tree ids and data blob ids never collide (keyed hashes of different content), so one set
  // holds both.
  const used = new Set<string>();
  let walked = 0;
  await forEachTreeNode(
    roots,
    (treeId) => loadTree(vault, index, treeId, options.signal),
    (node) => {
      for (const piece of node.content ?? []) {
        if (typeof piece !== 'string') continue;
        if (!index.has(piece)) throw missingBlob(piece);
        used.add(piece);
      }
    },
    { seen: used, onTree: () => options.onProgress?.({ phase: 'trees', done: ++walked }) },
  );
  return { used, points: ids.length };
}

// Reads through the freshly built index rather than BlobReader, which uses the vault's own
// (possibly stale) index.
async function loadTree(
  vault: Vault,
  index: MasterIndex,
  id: string,
  signal?: AbortSignal,
): Promise<TreeNode[]> {
  const location = index.get(id);
  if (!location) throw missingBlob(id);
  if (location.type !== 'tree')
    throw damaged(
      new HoldfastError('VAULT_INTEGRITY', `Tree ${id.slice(0, 12)} is indexed as data.`),
    );
  const sealed = await vault.backend.getRange(
    packObjectName(location.pack),
    location.offset,
    location.length,
    signal ? { signal } : {},
  );
  return stopOnDamage(() =>
    decodeTree(unsealBlob(vault.keys.encryption, 'tree', id, sealed), `tree ${id.slice(0, 12)}`),
  );
}

function classify(
  state: IndexState,
  used: ReadonlySet<string>,
  sizes: ReadonlyMap<string, number>,
  threshold: number,
): Plan {
  const plan: Plan = { keep: [], remove: [], repack: [], orphans: [], blobsRemoved: 0 };
  for (const [id, blobs] of state.packs) {
    const live: UsedBlob[] = [];
    let usedBytes = 0;
    for (const blob of blobs) {
      const location = state.index.get(blob.id);
      // A blob stored twice is used only in the copy the index resolves to; other copies are
      // garbage, so duplicates left by concurrent backups are removed too.
      if (!used.has(blob.id) || location?.pack !== id || location.offset !== blob.offset) continue;
      live.push({ id: blob.id, location });
      usedBytes += blob.length;
    }
    const bytes = sizes.get(id);
    if (bytes === undefined && live.length > 0) {
      throw new HoldfastError(
        'VAULT_INTEGRITY',
        `Pack ${id.slice(0, 12)} holds data in use but is missing. ${STOPPED}`,
      );
    }
    if (bytes === undefined || live.length === 0) {
      plan.remove.push({ id, bytes: bytes ?? 0, exists: bytes !== undefined });
      plan.blobsRemoved += blobs.length;
    } else if (live.length === blobs.length || usedBytes >= threshold * bytes) {
      plan.keep.push(id);
    } else {
      plan.repack.push({ id, bytes, used: live, usedBytes });
      plan.blobsRemoved += blobs.length - live.length;
    }
  }
  for (const [id, bytes] of sizes) if (!state.packs.has(id)) plan.orphans.push({ id, bytes });
  return plan;
}

/** Copies the used blobs of `packs` into new packs; returns them once all are uploaded. */
async function repack(
  vault: Vault,
  packs: Plan['repack'],
  options: PruneOptions,
): Promise<Array<{ id: string; blobs: PackedBlob[]; bytes: number }>> {
  // BlobWriter is not used: it dedups against the vault's index (which still lists these blobs)
  // and writes index files of its own, while step 2 must name the new packs in the one index.
  const reader = new BlobReader(vault);
  const builders = new Map<BlobType, PackBuilder>();
  const written: Array<{ id: string; blobs: PackedBlob[]; bytes: number }> = [];
  const upload = async (builder: PackBuilder): Promise<void> => {
    throwIfAborted(options.signal);
    const pack = builder.finish(vault.keys.encryption, vault.random);
    const signal = options.signal ? { signal: options.signal } : {};
    await vault.backend.put(packObjectName(pack.id), pack.bytes, signal);
    written.push({ id: pack.id, blobs: pack.blobs, bytes: pack.bytes.byteLength });
  };
  for (const [done, pack] of packs.entries()) {
    const types = new Map(pack.used.map((b) => [b.id, b.location.type]));
    for await (const blob of reader.loadFromPack(pack.id, pack.used, options.signal)) {
      const type = types.get(blob.id);
      if (blob.data === undefined || type === undefined) throw damaged(blob.error);
      const sealed = await options.sealer.seal(type, blob.id, blob.data);
      let builder = builders.get(type);
      if (!builder) builders.set(type, (builder = new PackBuilder()));
      builder.add(type, blob.id, sealed, blob.data.byteLength);
      if (builder.byteLength >= vault.config.packSize) {
        builders.delete(type);
        await upload(builder);
      }
    }
    options.onProgress?.({ phase: 'repack', done: done + 1, total: packs.length });
  }
  for (const builder of builders.values()) await upload(builder);
  return written;
}

// A superseded index file or an unused pack that is locked stays: the new index no longer
// names it, so a later prune (once the lock has ended) removes it as an orphan.
async function deleteAll(
  vault: Vault,
  names: readonly string[],
  options: PruneOptions,
  locked: Set<string>,
): Promise<void> {
  let done = 0;
  const now = vault.clock.now();
  await forEachLimit(names, 8, async (name) => {
    throwIfAborted(options.signal);
    const result = await deleteUnlessLocked(vault.backend, name, now, options.signal);
    if (result.outcome === 'locked') locked.add(name);
    done += 1;
    options.onProgress?.({ phase: 'delete', done, total: names.length });
  });
}

const STOPPED = "Prune stopped without deleting anything; run 'holdfast check'.";

function missingBlob(id: string): HoldfastError {
  const what = `Blob ${id.slice(0, 12)} is used by a recovery point but is not in the index.`;
  return new HoldfastError('VAULT_INTEGRITY', `${what} ${STOPPED}`);
}

/** Adds what to do to integrity errors; other errors (backend, cancel) pass unchanged. */
function damaged(cause: unknown): unknown {
  if (!isHoldfastError(cause, 'VAULT_INTEGRITY')) return cause;
  return new HoldfastError('VAULT_INTEGRITY', `${cause.message} ${STOPPED}`, { cause });
}

async function stopOnDamage<T>(work: () => T | Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw damaged(error);
  }
}
