import { planRetention, type JobContext, type JobHandler } from '../jobs/index.js';
import { jobSubject, type JobDeps } from './job-deps.js';
import { forgetPointIds, pruneVault } from './vault-maintenance.js';
import { queueReplication } from './redundancy.js';
import { refreshVaultUsage } from './vault-usage.js';

const HOUR_MS = 3_600_000;

/**
 * Enforces retention on one vault (docs/retention.md): points past their expiry leave the
 * vault, snapshots past their snapshot days leave the snapshot store (once the vault holds the
 * point), soft-deleted items past their purge date go with all their points; then both stores
 * are pruned. Never: the newest point of a protected item, or any point of a soft-deleted item
 * before its purge date. The catalog changes only after the stores did, so a run interrupted in
 * between is finished by the next one.
 */
export function retentionJobHandler(deps: JobDeps): JobHandler {
  return async (ctx) => {
    const { vault } = await jobSubject(deps, ctx.job);
    await ctx.startPhase('expire');
    const plan = await planRetention(deps.catalog, vault.id, deps.clock.now());
    const vaultRefs = [
      ...plan.remove.flatMap((p) => (p.vaultRef ? [p.vaultRef] : [])),
      ...plan.diskSnapshots.map((s) => s.vaultRef),
    ];
    const snapshotRefs = [...plan.remove, ...plan.dropSnapshot].flatMap((p) =>
      p.snapshotRef ? [p.snapshotRef] : [],
    );
    const target = await deps.access.open(vault, { index: 'none' });
    const store = await deps.access.openSnapshots(vault, { index: 'none', create: false });
    // A point whose object is still under a storage retention lock stays, in the vault and in
    // the catalog, with its expiry moved to the lock's end — at least an hour on, so that a
    // clock ahead of the storage's cannot make every tick try again.
    const { locked } = await forgetPointIds(target, vaultRefs, ctx.signal);
    if (store) await forgetPointIds(store, snapshotRefs, ctx.signal);
    const lockedUntil = new Map(locked.map((l) => [l.id, l.until]));
    const removed = plan.remove.filter((p) => p.vaultRef === null || !lockedUntil.has(p.vaultRef));
    await deps.catalog.transaction(async (catalog) => {
      for (const point of removed) await catalog.points.delete(point.id);
      for (const point of plan.remove)
        if (!removed.includes(point))
          await catalog.points.update(point.id, {
            snapshotRef: null,
            expiresAt: Math.max(lockedUntil.get(point.vaultRef!)!, deps.clock.now()) + HOUR_MS,
          });
      for (const point of plan.dropSnapshot)
        await catalog.points.update(point.id, { snapshotRef: null });
      for (const item of plan.purgeItems) await catalog.items.delete(item.id);
      for (const snapshot of plan.diskSnapshots) {
        const until = lockedUntil.get(snapshot.vaultRef);
        if (until === undefined) await catalog.diskSnapshots.delete(snapshot.id);
        else
          await catalog.diskSnapshots.update(snapshot.id, {
            expiresAt: Math.max(until, deps.clock.now()) + HOUR_MS,
          });
      }
    });
    await ctx.finishPhase('expire', {
      removed: removed.length,
      keptLocked: locked.length,
      snapshotsDropped: plan.dropSnapshot.length,
      itemsPurged: plan.purgeItems.length,
      diskSnapshotsExpired: plan.diskSnapshots.length,
    });
    const pruned = await prune(
      ctx,
      vaultRefs.length > 0 ? target : undefined,
      snapshotRefs.length > 0 ? store : undefined,
    );
    await target.loadIndex();
    await refreshVaultUsage(deps.catalog, deps.clock, vault, target, ctx.signal);
    if (vaultRefs.length > 0) await queueReplication(deps, vault);
    return {
      result: {
        pointsRemoved: removed.length,
        pointsKeptLocked: locked.length,
        snapshotsDropped: plan.dropSnapshot.length,
        itemsPurged: plan.purgeItems.map((i) => i.name),
        diskSnapshotsExpired: plan.diskSnapshots.map((s) => s.name),
        bytesFreed: pruned,
      },
    };
  };
}

async function prune(
  ctx: JobContext,
  ...vaults: Array<Awaited<ReturnType<JobDeps['access']['open']>> | undefined>
): Promise<number> {
  await ctx.startPhase('prune');
  let freed = 0;
  for (const vault of vaults) {
    if (vault === undefined) continue;
    await vault.loadIndex();
    freed += (await pruneVault(vault, ctx.signal)).bytesFreed;
  }
  await ctx.finishPhase('prune', { bytesFreed: freed });
  return freed;
}
