import type { PointRecord, VaultRecord } from '../catalog/index.js';
import { HoldfastError } from '../core/index.js';
import { verifyRestore, type Point, type Vault } from '../engine/index.js';
import type { JobContext, JobHandler } from '../jobs/index.js';
import { jobSubject, type JobDeps } from './job-deps.js';
import { listPoints } from './resolve-point.js';
import { restoreMachine } from './machine-restore-job.js';
import { runRestorer, underRestoreLock } from './machine-restore-steps.js';
import { deployImage } from './image-deploy-job.js';
import { restoreDiskSnapshot } from './disk-snapshot-job.js';
import type { RestoreJobParams } from './restore-params.js';

export { RESTORE_PHASES, type RestoreJobParams } from './restore-params.js';

/**
 * Restores an item's point into a target directory from the fastest tier that holds it: the
 * local snapshot store when the point is still there, else the vault. An interrupted restore
 * run again skips what is already correct (the engine's resumable restore).
 */
export function restoreJobHandler(deps: JobDeps): JobHandler {
  return async (ctx) => {
    const params = ctx.job.params as unknown as RestoreJobParams;
    const { item, vault } = await jobSubject(deps, ctx.job);
    if (params.diskSnapshot !== undefined)
      return {
        result: await restoreDiskSnapshot(deps, ctx, vault, {
          diskSnapshot: params.diskSnapshot,
          target: params.target!,
          ...(params.format ? { format: params.format } : {}),
        }),
      };
    if (params.image !== undefined)
      return {
        result: await deployImage(deps, ctx, vault, {
          image: params.image,
          target: params.target!,
          ...(params.newName ? { newName: params.newName } : {}),
        }),
      };
    const record = await deps.catalog.points.byId(params.point);
    if (record === undefined)
      throw new HoldfastError('POINT_NOT_FOUND', `Point ${params.point} no longer exists.`);
    const source = await openTier(deps, vault, record, params.tier ?? 'auto', params.from);
    return underRestoreLock(source.vault, ctx.signal, async () => {
      if (item?.workload === 'machine') {
        const result = await restoreMachine(deps, ctx, item, vault, source, params);
        return { result: { point: record.id, tier: source.tier, ...result } };
      }
      await ctx.startPhase('restore');
      const progress = await runRestorer(ctx, source, {
        target: params.target!,
        ...(params.include ? { include: params.include } : {}),
        ...(params.exclude ? { exclude: params.exclude } : {}),
        ...(params.overwrite ? { overwrite: params.overwrite } : {}),
      });
      await ctx.finishPhase('restore');
      let verified: { checked: number; bytes: number; mismatches: number } | null = null;
      if (params.verify) {
        await ctx.startPhase('verify');
        verified = await verify(ctx, source.vault, source.point, params);
        await ctx.finishPhase('verify');
      } else await ctx.skipPhase('verify');
      return {
        result: {
          point: record.id,
          tier: source.tier,
          target: params.target,
          files: progress.files,
          dirs: progress.dirs,
          bytes: progress.bytes,
          skipped: progress.skipped,
          verified,
        },
      };
    });
  };
}

/** Opens the fastest readable tier holding a point (the snapshot store first, unless told). */
export async function openTier(
  deps: JobDeps,
  vault: VaultRecord,
  record: PointRecord,
  tier: 'auto' | 'snapshot' | 'vault',
  from: 'primary' | 'secondary' = 'primary',
): Promise<{ vault: Vault; point: Point; tier: 'snapshot' | 'vault' | 'secondary' }> {
  if (from === 'primary' && tier !== 'vault' && record.snapshotRef !== null) {
    const store = await deps.access.openSnapshots(vault, { index: 'reading', create: false });
    const point = store && (await listPoints(store)).find((p) => p.id === record.snapshotRef);
    if (store && point) return { vault: store, point, tier: 'snapshot' };
  }
  if (tier === 'snapshot')
    throw new HoldfastError('STATE_CONFLICT', `Point ${record.id} is not in the snapshot tier.`);
  if (record.vaultRef === null)
    throw new HoldfastError(
      'POINT_NOT_FOUND',
      `Point ${record.id} has reached no tier that is readable.`,
    );
  const opened = await deps.access.open(vault, { index: 'reading', from });
  const point = (await listPoints(opened, () => undefined)).find((p) => p.id === record.vaultRef);
  if (point === undefined)
    throw new HoldfastError(
      'POINT_NOT_FOUND',
      `Point ${record.id} is missing from vault '${vault.name}'. Run a verify job.`,
    );
  return { vault: opened, point, tier: from === 'secondary' ? 'secondary' : 'vault' };
}

async function verify(ctx: JobContext, vault: Vault, point: Point, params: RestoreJobParams) {
  let mismatches = 0;
  const result = await verifyRestore(
    vault,
    point,
    params.target!,
    { include: params.include ?? [], exclude: params.exclude ?? [] },
    (path, reason) => {
      mismatches += 1;
      ctx.itemError({ path, message: `verify: ${reason}` });
    },
    ctx.signal,
  );
  return { ...result, mismatches };
}
