import type { ItemRecord, PointRecord, VaultRecord } from '../catalog/index.js';
import { describeError, HoldfastError } from '../core/index.js';
import { copyPoints, createBlobSealer } from '../engine/index.js';
import { type JobContext, type JobHandler } from '../jobs/index.js';
import { backupFiles } from './file-backup.js';
import { snapshotMachine } from './machine-job.js';
import { takeDiskSnapshot, type DiskSnapshotParams } from './disk-snapshot-job.js';

import { pointTags, recordItemPoint } from './item-points.js';
import { jobSubject, type JobDeps } from './job-deps.js';
import { lockNewPoint } from './object-locking.js';
import { listPoints } from './resolve-point.js';
import { queueReplication } from './redundancy.js';
import { refreshVaultUsage } from './vault-usage.js';

/**
 * The two-phase backup (docs/jobs.md): phase `snapshot` backs the item up into the local
 * snapshot store and records the point (tier `snapshot`); phase `transfer` copies it into the
 * vault (tier `snapshot` and `vault`). Each phase finds what an interrupted attempt already
 * made — by the `job:` tag in the stores and the job id in the catalog — so a retry never makes
 * a second point.
 */
export function backupJobHandler(deps: JobDeps): JobHandler {
  return async (ctx) => {
    const { item, vault } = await jobSubject(deps, ctx.job);
    const diskSnapshot = ctx.job.params['diskSnapshot'] as DiskSnapshotParams | undefined;
    if (item === undefined && diskSnapshot !== undefined)
      return { result: await takeDiskSnapshot(deps, ctx, vault, diskSnapshot) };
    if (item === undefined) throw new HoldfastError('INTERNAL', 'A backup job needs an item.');
    if (item.state === 'soft_deleted')
      throw new HoldfastError(
        'STATE_CONFLICT',
        `Item '${item.name}' is deleted; undelete it first.`,
      );
    let point = await deps.catalog.points.byJob(ctx.job.id);
    if (point === undefined) point = await takeSnapshot(deps, ctx, item, vault);
    else await ctx.skipPhase('snapshot');
    if (point.vaultRef === null) point = await transfer(deps, ctx, vault, point);
    else await ctx.skipPhase('transfer');
    return {
      result: {
        point: point.id,
        files: point.files,
        bytes: point.bytes,
        storedBytes: point.storedBytes,
        tiers: ['snapshot', 'vault'],
        consistency: point.consistency,
        ...(ctx.checkpoint('snapshot')?.capture
          ? { capture: ctx.checkpoint('snapshot')!.capture }
          : {}),
      },
    };
  };
}

async function takeSnapshot(
  deps: JobDeps,
  ctx: JobContext,
  item: ItemRecord,
  vault: VaultRecord,
): Promise<PointRecord> {
  await ctx.startPhase('snapshot');
  const time = deps.clock.now();
  const store = await deps.access.openSnapshots(vault, { index: 'strict', create: true });
  if (store === undefined) throw new HoldfastError('INTERNAL', 'The snapshot store is missing.');
  const points = await listPoints(store);
  let snapshot = points.find((p) => p.tags.includes(`job:${ctx.job.id}`));
  let capture: Record<string, unknown> = {};
  if (snapshot === undefined) {
    // Looked up again under the lock: a retention run may have pruned the store meanwhile.
    const findParent = async () =>
      (await listPoints(store)).filter((p) => p.tags.includes(`item:${item.id}`)).pop();
    if (item.workload === 'machine') {
      const machine = await snapshotMachine(deps, ctx, item, store, findParent);
      snapshot = machine.point;
      capture = { capture: machine.capture };
    } else {
      snapshot = await backupFiles(store, {
        paths: item.source.paths,
        excludes: item.source.excludes,
        oneFileSystem: item.source.oneFileSystem,
        tags: pointTags(item, ctx.job.id),
        signal: ctx.signal,
        findParent,
        onError: (path, error) => ctx.itemError({ path, message: describeError(error) }),
        onProgress: (p) => ctx.progress('snapshot', { bytes: p.bytes, items: p.files }),
      });
    }
  }
  const record = await recordItemPoint(deps, item, vault, snapshot, {
    time,
    snapshotRef: snapshot.id,
    vaultRef: null,
    jobId: ctx.job.id,
  });
  await ctx.finishPhase('snapshot', { snapshotRef: snapshot.id, point: record.id, ...capture });
  return record;
}

async function transfer(
  deps: JobDeps,
  ctx: JobContext,
  vault: VaultRecord,
  point: PointRecord,
): Promise<PointRecord> {
  await ctx.startPhase('transfer');
  const store = await deps.access.openSnapshots(vault, { index: 'reading', create: false });
  const source = store && (await listPoints(store)).find((p) => p.id === point.snapshotRef);
  if (store === undefined || source === undefined)
    throw new HoldfastError(
      'VAULT_INTEGRITY',
      `The snapshot of point ${point.id} is gone from the snapshot store; it cannot be transferred. Run a new backup.`,
    );
  const target = await deps.access.open(vault, { index: 'strict' });
  let vaultRef = (await listPoints(target)).find((p) => p.tags.includes(`job:${ctx.job.id}`))?.id;
  if (vaultRef === undefined) {
    const sealer = createBlobSealer(target.keys.encryption, {
      level: target.config.compressionLevel,
    });
    try {
      const [copied] = await copyPoints(store, target, [source], {
        sealer,
        lockWaitMs: 10 * 60_000,
        signal: ctx.signal,
        onProgress: (p) =>
          ctx.progress('transfer', {
            bytes: p.bytes,
            items: p.blobs,
            totalBytes: source.stats.bytes,
          }),
      });
      vaultRef = copied?.target;
    } finally {
      await sealer.close();
    }
  }
  if (vaultRef === undefined) throw new HoldfastError('INTERNAL', 'The copy returned no point.');
  // Locked before the point counts as in the vault: an immutable vault's points are never
  // unprotected there once recorded (a retry locks again; locks only grow).
  const locksSet = await lockNewPoint(vault, target, vaultRef, point.expiresAt, ctx.signal);
  await deps.catalog.points.update(point.id, { vaultRef });
  await ctx.finishPhase('transfer', { vaultRef, locksSet });
  await refreshVaultUsage(deps.catalog, deps.clock, vault, target, ctx.signal);
  await queueReplication(deps, vault);
  return { ...point, vaultRef };
}
