import type { Backend, ObjectInfo } from '../backends/index.js';
import {
  forEachLimit,
  HoldfastError,
  isHoldfastError,
  throwIfAborted,
  type Clock,
} from '../core/index.js';

/** What a replication pass found and did. */
export interface ReplicationReport {
  /** Objects and bytes copied to the secondary in this pass. */
  readonly copied: number;
  readonly bytesCopied: number;
  /** Objects the primary no longer has, removed from the secondary. */
  readonly deleted: number;
  /** Left behind when the pass ended (0 after a complete pass). */
  readonly objectsBehind: number;
  readonly bytesBehind: number;
}

/** The marker object that makes a location a vault (docs/vault-format.md). */
const MARKER = 'holdfast.json';

// The order objects reach the secondary, so that it is a readable vault at every instant
// (docs/vault-format.md write ordering): packs before the index files naming them, index
// before the points using them, key slots and config before the marker.
const COPY_ORDER = ['packs/', 'index/', 'keys/', 'config', 'points/', 'holdfast.json'];
// Deletions go the other way: points first, then what only they kept alive.
const DELETE_ORDER = ['points/', 'index/', 'packs/', 'keys/'];

/**
 * Copies to `secondary` every object of `primary` it lacks (or holds with another size), in an
 * order that keeps the secondary a readable vault throughout, then removes from it what the
 * primary has deleted (forgotten points, pruned packs). Locks are never copied: they belong to
 * the processes of one location. Content-named objects never change, so name and size decide.
 */
export async function replicateObjects(
  primary: Backend,
  secondary: Backend,
  options: {
    signal?: AbortSignal;
    onProgress?: (copied: number, bytes: number) => void;
    /** Remove what the primary deleted (default true). */
    deletions?: boolean;
  } = {},
): Promise<ReplicationReport> {
  const signal = options.signal;
  const [source, target] = await Promise.all([
    listAll(primary, signal, 'primary'),
    listAll(secondary, signal, 'secondary'),
  ]);
  // A primary that lists no vault is lost or emptied, not a vault whose points were all
  // forgotten: mirroring it would delete the secondary — the copy that is left.
  requireVault(primary, source);
  let copied = 0;
  let bytesCopied = 0;
  for (const prefix of COPY_ORDER) {
    const wanted = [...source.values()].filter(
      (o) => startsGroup(o.name, prefix) && target.get(o.name)?.size !== o.size,
    );
    await forEachLimit(wanted, 4, async (object) => {
      throwIfAborted(signal);
      const data = await primary.get(object.name, signal ? { signal } : {});
      await secondary.put(object.name, data, signal ? { signal } : {});
      copied += 1;
      bytesCopied += data.length;
      options.onProgress?.(copied, bytesCopied);
    });
  }
  let deleted = 0;
  for (const prefix of options.deletions === false ? [] : DELETE_ORDER) {
    for (const object of target.values()) {
      if (!startsGroup(object.name, prefix) || source.has(object.name)) continue;
      throwIfAborted(signal);
      await secondary.delete(object.name, signal ? { signal } : {});
      deleted += 1;
    }
  }
  return { copied, bytesCopied, deleted, objectsBehind: 0, bytesBehind: 0 };
}

/** Passes {@link replicateUntilCaughtUp} makes while new objects keep arriving. */
const MAX_PASSES = 3;

/**
 * Replication passes until one leaves nothing behind. Objects that land on the primary while a
 * pass runs (a backup finishing meanwhile) are not in that pass's listing; so "caught up" is
 * claimed only after a check finds nothing missing, and holds for everything that existed when
 * the last pass listed the primary (`listedAt`). Still behind after a few passes, it fails with
 * BACKEND_TRANSIENT (the job is retried later).
 */
export async function replicateUntilCaughtUp(
  primary: Backend,
  secondary: Backend,
  options: {
    deletions: boolean;
    clock: Clock;
    signal?: AbortSignal;
    onProgress?: (copied: number, bytes: number) => void;
  },
): Promise<ReplicationReport & { passes: number; listedAt: number }> {
  let copied = 0;
  let bytesCopied = 0;
  let deleted = 0;
  for (let pass = 1; ; pass += 1) {
    const listedAt = options.clock.now();
    const report = await replicateObjects(primary, secondary, {
      deletions: options.deletions,
      ...(options.signal ? { signal: options.signal } : {}),
      onProgress: (items, bytes) => options.onProgress?.(copied + items, bytesCopied + bytes),
    });
    copied += report.copied;
    bytesCopied += report.bytesCopied;
    deleted += report.deleted;
    const lag = await replicationLag(primary, secondary, options.signal);
    if (lag.objectsBehind === 0)
      return {
        copied,
        bytesCopied,
        deleted,
        objectsBehind: 0,
        bytesBehind: 0,
        passes: pass,
        listedAt,
      };
    if (pass === MAX_PASSES)
      throw new HoldfastError(
        'BACKEND_TRANSIENT',
        `The primary kept changing: ${lag.objectsBehind} objects still behind after ${pass} passes; retrying later.`,
      );
  }
}

/** How far the secondary is behind: objects (and bytes) of the primary it lacks. */
export async function replicationLag(
  primary: Backend,
  secondary: Backend,
  signal?: AbortSignal,
): Promise<{ objectsBehind: number; bytesBehind: number }> {
  const [source, target] = await Promise.all([
    listAll(primary, signal, 'primary'),
    listAll(secondary, signal, 'secondary'),
  ]);
  requireVault(primary, source);
  let objectsBehind = 0;
  let bytesBehind = 0;
  for (const object of source.values()) {
    if (object.name.startsWith('locks/') || target.get(object.name)?.size === object.size) continue;
    objectsBehind += 1;
    bytesBehind += object.size;
  }
  return { objectsBehind, bytesBehind };
}

function requireVault(primary: Backend, listed: Map<string, ObjectInfo>): void {
  if (!listed.has(MARKER))
    throw new HoldfastError(
      'VAULT_NOT_FOUND',
      `The primary location ${primary.location} holds no vault (no ${MARKER}); nothing was copied or deleted. If the primary is lost, restore --from secondary or fail over.`,
    );
}

function startsGroup(name: string, prefix: string): boolean {
  return prefix.endsWith('/') ? name.startsWith(prefix) : name === prefix;
}

async function listAll(
  backend: Backend,
  signal: AbortSignal | undefined,
  role: 'primary' | 'secondary',
): Promise<Map<string, ObjectInfo>> {
  const objects = new Map<string, ObjectInfo>();
  try {
    for await (const info of backend.list('', signal ? { signal } : {}))
      if (!info.name.startsWith('locks/')) objects.set(info.name, info);
  } catch (error) {
    // A secondary container or bucket not made yet holds nothing; the first put makes it. A
    // primary that is not there is an error (see replicateObjects).
    if (role === 'primary' || !isHoldfastError(error, 'BACKEND_NOT_FOUND')) throw error;
  }
  return objects;
}
