import type { Backend, RetentionMode } from '../backends/index.js';
import { HoldfastError, forEachLimit, isHoldfastError } from '../core/index.js';
import { packObjectName } from './pack.js';
import { decodePoint } from './point.js';
import { forEachTreeNode, loadTree } from './tree-walk.js';
import { BlobReader } from './blob-reader.js';
import type { Vault } from './vault.js';

/** What {@link deleteUnlessLocked} did; `locked` says until when. */
export type LockedDelete =
  | { readonly outcome: 'deleted' | 'missing' }
  | { readonly outcome: 'locked'; readonly until: number };

/**
 * Deletes an object unless the backend holds it under a retention lock that has not ended. On
 * S3 with Object Lock a delete "succeeds" by hiding the locked version behind a delete marker,
 * which would make the vault lose sight of data it must keep: so a locked object is never
 * asked to be deleted (docs/immutability.md). Backends without locks just delete.
 */
export async function deleteUnlessLocked(
  backend: Backend,
  name: string,
  now: number,
  signal?: AbortSignal,
): Promise<LockedDelete> {
  const options = signal ? { signal } : {};
  try {
    if (backend.capabilities.objectLock) {
      const info = await backend.stat(name, options);
      if (info.retainUntil !== undefined && info.retainUntil > now)
        return { outcome: 'locked', until: info.retainUntil };
    }
    await backend.delete(name, options);
    return { outcome: 'deleted' };
  } catch (error) {
    if (isHoldfastError(error, 'BACKEND_NOT_FOUND')) return { outcome: 'missing' };
    throw error;
  }
}

/**
 * Every object a point needs to be restored: the point itself, the packs holding its trees
 * and data (through the vault's loaded index), the live index files, and the vault's key
 * slots, config and marker.
 */
export async function objectsOfPoint(
  vault: Vault,
  pointId: string,
  signal?: AbortSignal,
): Promise<{ point: string; others: string[] }> {
  const point = decodePoint(pointId, await vault.loadObject('point', pointId, signal));
  const reader = new BlobReader(vault);
  const packs = new Set<string>();
  const addBlob = (id: string): void => {
    const location = vault.index.get(id);
    if (location === undefined)
      throw new HoldfastError(
        'VAULT_INTEGRITY',
        `Blob ${id.slice(0, 12)} of point ${pointId.slice(0, 12)} is not in the index.`,
      );
    packs.add(location.pack);
  };
  const trees = await forEachTreeNode(
    [point.tree],
    (treeId) => loadTree(reader, treeId, signal),
    (node) => {
      for (const piece of node.content ?? []) if (typeof piece === 'string') addBlob(piece);
    },
  );
  for (const tree of trees) addBlob(tree);
  const keys: string[] = [];
  for await (const info of vault.backend.list('keys/', signal ? { signal } : {}))
    keys.push(info.name);
  return {
    point: `points/${pointId}`,
    others: [
      ...[...packs].sort().map(packObjectName),
      ...[...vault.indexFiles].sort().map((name) => `index/${name}`),
      ...keys,
      'config',
      'holdfast.json',
    ],
  };
}

/** The retention mode for a vault's immutability state, or none. */
export function retentionModeFor(immutability: string): RetentionMode | undefined {
  if (immutability === 'locked') return 'compliance';
  if (immutability === 'enabled') return 'governance';
  return undefined;
}

/** Options of {@link lockPoint}. */
export interface LockPointOptions {
  readonly mode: RetentionMode;
  /**
   * Shared objects (packs, keys, config) are locked this much longer than the point, so that
   * the next backups, which mostly reuse them, seldom need to extend them again. Default 7 days.
   */
  readonly slackMs?: number;
  /** Locks known to exist already (name → until), filled as it goes: locks only ever grow. */
  readonly known?: Map<string, number>;
  readonly signal?: AbortSignal;
}

const DEFAULT_SLACK_MS = 7 * 86_400_000;

/**
 * Locks every object a point needs until its expiry (shared objects a little longer), where the
 * backend can (docs/immutability.md, "Object locks"). Returns how many objects it covered and
 * how many locks it had to set or extend.
 */
export async function lockPoint(
  vault: Vault,
  pointId: string,
  until: number,
  options: LockPointOptions,
): Promise<{ objects: number; extended: number }> {
  const backend = vault.backend;
  if (!backend.capabilities.objectLock || backend.extendRetention === undefined)
    return { objects: 0, extended: 0 };
  const { point, others } = await objectsOfPoint(vault, pointId, options.signal);
  const slack = options.slackMs ?? DEFAULT_SLACK_MS;
  const wanted: Array<[string, number]> = [
    [point, until],
    ...others.map((name): [string, number] => [name, until + slack]),
  ];
  let extended = 0;
  await forEachLimit(wanted, 8, async ([name, lockUntil]) => {
    if ((options.known?.get(name) ?? 0) >= lockUntil) return;
    await backend.extendRetention!(name, lockUntil, {
      mode: options.mode,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    options.known?.set(name, lockUntil);
    extended += 1;
  });
  return { objects: wanted.length, extended };
}
