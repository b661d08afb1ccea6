import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { VaultRecord } from '../catalog/index.js';
import { HoldfastError } from '../core/index.js';
import type { Point, Vault } from '../engine/index.js';
import type { JobContext } from '../jobs/index.js';
import { pointTags, recordItemPoint } from './item-points.js';
import type { JobDeps } from './job-deps.js';
import { backupMachine } from './machine-backup.js';
import { runScript, type MachineItem } from './machine-job.js';
import { restoreTree, verifyOrThrow } from './machine-restore-steps.js';
import { processesUsing, replaceDiskFile } from './machine-restore.js';
import { listPoints } from './resolve-point.js';
import type { RestoreJobParams } from './restore-params.js';

export async function replaceDisks(
  deps: JobDeps,
  ctx: JobContext,
  item: MachineItem,
  vault: VaultRecord,
  source: { vault: Vault; point: Point },
  params: RestoreJobParams,
  names: readonly string[],
): Promise<Record<string, unknown>> {
  const disks = names.map((name) => {
    const disk = item.source.disks.find((d) => d.name === name);
    if (disk === undefined)
      throw new HoldfastError(
        'USAGE_INVALID',
        `Disk '${name}' of the point is no longer a disk of '${item.name}'; restore --as disks instead.`,
      );
    return disk;
  });
  const users = await processesUsing(disks.map((d) => d.path));
  if (users.length > 0 && params.force !== true)
    throw new HoldfastError(
      'STATE_CONFLICT',
      `The machine looks running: ${users.map((u) => `process ${u.pid} has ${u.path} open`).join('; ')}. Shut it down first, or give --force.`,
    );
  const safety = await safetySnapshot(deps, ctx, item, vault);
  await ctx.startPhase('restore');
  let bytes = 0;
  const staged: Array<{ from: string; to: string }> = [];
  for (const disk of disks) {
    // Restored beside the disk (same file system), then renamed over it: never half-replaced.
    const stage = join(dirname(disk.path), `.holdfast-restore-${ctx.job.id}`);
    const filter = { include: [`/disks/${disk.name}`] };
    bytes += (await restoreTree(ctx, source, stage, filter)).bytes;
    if (params.verify === true) await verifyOrThrow(ctx, source, stage, filter);
    staged.push({ from: join(stage, 'disks', disk.name), to: disk.path });
  }
  for (const { from, to } of staged) await replaceDiskFile(from, to);
  for (const stage of new Set(staged.map((s) => dirname(dirname(s.from)))))
    await rm(stage, { recursive: true, force: true });
  await ctx.finishPhase('restore');
  await ctx.skipPhase('verify');
  return {
    as: 'replace',
    disks: disks.map((d) => d.path),
    bytes,
    safetyPoint: safety,
    verified: params.verify === true,
    ...(users.length > 0 ? { forcedWhileOpen: users } : {}),
  };
}

/**
 * Backs up the machine's current disks before they are overwritten; the point is an ordinary
 * point of the item (kept by its policy), taken crash-consistent: the machine is down.
 */
async function safetySnapshot(
  deps: JobDeps,
  ctx: JobContext,
  item: MachineItem,
  vault: VaultRecord,
): Promise<string> {
  const done = ctx.checkpoint('safety');
  if (done?.point !== undefined) {
    await ctx.skipPhase('safety');
    return String(done.point);
  }
  await ctx.startPhase('safety');
  const store = await deps.access.openSnapshots(vault, { index: 'strict', create: true });
  if (store === undefined) throw new HoldfastError('INTERNAL', 'The snapshot store is missing.');
  const { scripts: _scripts, freezeCommand: _freeze, fsfreeze: _fs, ...quiet } = item.source;
  const { point } = await backupMachine(store, {
    name: item.name,
    source: quiet,
    mirrorDir: deps.access.mirrorDir(item.id),
    tags: [...pointTags(item, ctx.job.id), 'safety'],
    runScript,
    now: () => deps.clock.now(),
    notice: (message) => ctx.itemError({ path: item.name, message }),
    findParent: async () =>
      (await listPoints(store)).filter((p) => p.tags.includes(`item:${item.id}`)).pop(),
    signal: ctx.signal,
    onProgress: (p) =>
      ctx.progress('safety', { bytes: p.bytes, items: p.disks, totalBytes: p.totalBytes }),
  });
  const record = await recordItemPoint(deps, item, vault, point, {
    time: deps.clock.now(),
    snapshotRef: point.id,
    vaultRef: null,
    jobId: ctx.job.id,
  });
  await ctx.finishPhase('safety', { point: record.id });
  return record.id;
}
