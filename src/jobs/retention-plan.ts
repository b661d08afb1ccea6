import type {
  Catalog,
  DiskSnapshotRecord,
  ItemRecord,
  PointRecord,
  VaultRef,
} from '../catalog/index.js';

/** What retention would do to one vault now. */
export interface RetentionPlan {
  /** Points leaving every tier: their catalog rows go too. */
  readonly remove: PointRecord[];
  /** Points leaving only the snapshot tier (they stay in the vault). */
  readonly dropSnapshot: PointRecord[];
  /** Soft-deleted items past their purge date: removed with all their points. */
  readonly purgeItems: ItemRecord[];
  /** Disk snapshots past their own expiry (docs/disks.md "Disk snapshots"). */
  readonly diskSnapshots: DiskSnapshotRecord[];
}

/** True when the plan has nothing to do. */
export function isEmptyPlan(plan: RetentionPlan): boolean {
  return (
    plan.remove.length +
      plan.dropSnapshot.length +
      plan.purgeItems.length +
      plan.diskSnapshots.length ===
    0
  );
}

/**
 * The retention rules of docs/policies.md applied to one vault at `now`, in one place for the
 * scheduler (is a run due?) and the retention job (what does it remove?). Points past their
 * expiry leave every tier — never the newest point of a protected item, nor a point of a
 * soft-deleted item before its purge date; snapshots past their snapshot days leave the
 * snapshot tier once the vault holds the point; soft-deleted items past their purge date go
 * with all their points.
 */
export async function planRetention(
  catalog: Catalog,
  vaultId: VaultRef,
  now: number,
): Promise<RetentionPlan> {
  const purgeItems = (await catalog.items.purgeDue(now)).filter((i) => i.vaultId === vaultId);
  const purged = new Set<string>(purgeItems.map((i) => i.id));
  const remove: PointRecord[] = [];
  const dropSnapshot: PointRecord[] = [];
  for (const item of purgeItems) remove.push(...(await catalog.points.forItem(item.id)));
  for (const point of await catalog.points.dueForRetention(vaultId, now)) {
    if (purged.has(point.itemId)) continue;
    const item = await catalog.items.byId(point.itemId);
    const expired =
      point.expiresAt !== null &&
      point.expiresAt <= now &&
      item?.state !== 'soft_deleted' &&
      !(item?.state === 'protected' && (await catalog.points.newest(item.id))?.id === point.id);
    if (expired) remove.push(point);
    else if (
      point.snapshotRef !== null &&
      point.vaultRef !== null &&
      point.snapshotExpiresAt !== null &&
      point.snapshotExpiresAt <= now
    )
      dropSnapshot.push(point);
  }
  const diskSnapshots = await catalog.diskSnapshots.expired(vaultId, now);
  return { remove, dropSnapshot, purgeItems, diskSnapshots };
}
