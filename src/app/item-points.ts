import type { Catalog, ItemRecord, PointRecord, VaultRecord } from '../catalog/index.js';
import { HoldfastError, type Clock } from '../core/index.js';
import type { Point } from '../engine/index.js';
import { expiryWhenRecorded, parsePolicySpec } from '../jobs/index.js';

const DAY_MS = 86_400_000;

/** Where a new point is, and what made it. */
export interface PointRefs {
  /** When the point was taken (its expiry counts from here). */
  readonly time: number;
  readonly snapshotRef: string | null;
  readonly vaultRef: string | null;
  readonly jobId: string | null;
}

/**
 * Records a new point of `item` in the catalog with its expiry fixed now, by the item's policy
 * (docs/policies.md), and marks the item's last success.
 */
export async function recordItemPoint(
  deps: { readonly catalog: Catalog; readonly clock: Clock },
  item: ItemRecord,
  vault: VaultRecord,
  point: Point,
  refs: PointRefs,
): Promise<PointRecord> {
  const policy =
    item.policyId === null ? undefined : await deps.catalog.policies.byId(item.policyId);
  if (policy === undefined)
    throw new HoldfastError('STATE_CONFLICT', `Item '${item.name}' has no policy.`);
  const spec = parsePolicySpec(policy.spec);
  return deps.catalog.transaction(async (catalog) => {
    const record = await catalog.points.create({
      itemId: item.id,
      vaultId: vault.id,
      time: refs.time,
      snapshotRef: refs.snapshotRef,
      vaultRef: refs.vaultRef,
      consistency: point.consistency,
      files: point.stats.files,
      bytes: point.stats.bytes,
      storedBytes: point.stats.storedBytes,
      expiresAt: expiryWhenRecorded(
        refs.time,
        item.lastSuccessAt ?? undefined,
        spec.retention,
        spec.timezone,
      ),
      snapshotExpiresAt: refs.snapshotRef === null ? null : refs.time + spec.snapshotDays * DAY_MS,
      jobId: refs.jobId as PointRecord['jobId'],
      createdAt: deps.clock.now(),
    });
    await catalog.items.update(item.id, {
      lastBackupAt: deps.clock.now(),
      lastSuccessAt: refs.time,
    });
    return record;
  });
}

/** Tags that tie a point in a vault to its item and to the job that made it. */
export function pointTags(item: ItemRecord, jobId: string): string[] {
  return [`item:${item.id}`, `job:${jobId}`];
}

/**
 * The point of item `itemName` that `ref` names (`latest` or an id) among its points, oldest
 * first; POINT_NOT_FOUND saying how to list them otherwise. `where` qualifies "no point yet".
 */
export function itemPointByRef(
  points: readonly PointRecord[],
  ref: string,
  itemName: string,
  where = '',
): PointRecord {
  const point = ref === 'latest' ? points.at(-1) : points.find((p) => p.id === ref);
  if (point === undefined)
    throw new HoldfastError(
      'POINT_NOT_FOUND',
      ref === 'latest'
        ? `Item '${itemName}' has no recovery point${where} yet.`
        : `Item '${itemName}' has no point ${ref}; list them with 'holdfast points ${itemName}'.`,
    );
  return point;
}
