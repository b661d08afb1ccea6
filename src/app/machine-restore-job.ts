import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { ItemRecord, VaultRecord } from '../catalog/index.js';
import { describeError, HoldfastError } from '../core/index.js';
import {
  createBlobOpener,
  Restorer,
  verifyRestore,
  type Point,
  type Vault,
} from '../engine/index.js';
import type { JobContext } from '../jobs/index.js';
import { pointTags } from './item-points.js';
import { recordItemPoint } from './item-points.js';
import type { JobDeps } from './job-deps.js';
import { backupMachine } from './machine-backup.js';
import { extractFromMachinePoint } from './disk-browse.js';
import type { MachineItem } from './machine-job.js';
import { runScript } from './machine-job.js';
import {
  machineDescription,
  processesUsing,
  refusePartialMachine,
  reidentifyConfigs,
  replaceDiskFile,
  restoreQcow2Disks,
  type MachineRestoreMode,
} from './machine-restore.js';
import { listPoints } from './resolve-point.js';
import type { RestoreJobParams } from './restore-params.js';

/** Phases of a restore that replaces a machine's disks: a safety snapshot first. */
export const REPLACE_PHASES = ['safety', 'restore', 'verify'] as const;

/**
 * Restores a machine point as disks (raw or qcow2, configuration beside them), as a new
 * machine (identifiers changed), or in place of the machine's disks after a safety snapshot
 * (docs/disks.md "Restore options").
 */
export async function restoreMachine(
  deps: JobDeps,
  ctx: JobContext,
  item: ItemRecord,
  vault: VaultRecord,
  source: { vault: Vault; point: Point },
  params: RestoreJobParams,
): Promise<Record<string, unknown>> {
  if (item.workload !== 'machine')
    throw new HoldfastError(
      'USAGE_INVALID',
      `Item '${item.name}' is not a machine; restore it without --as.`,
    );
  const mode: MachineRestoreMode = params.as ?? 'disks';
  const description = await machineDescription(source.vault, source.point);
  refusePartialMachine(mode, description);
  const names = description.disks.map((d) => d.name);
  if (mode === 'files') {
    await ctx.startPhase('restore');
    const extracted = await extractFromMachinePoint(
      source.vault,
      source.point,
      params.paths ?? [],
      params.target!,
      ctx.signal,
    );
    for (const warning of extracted.warnings) ctx.itemError({ path: warning, message: warning });
    await ctx.finishPhase('restore');
    await ctx.skipPhase('verify');
    return { as: mode, target: params.target, ...extracted, warnings: extracted.warnings.length };
  }
  if (mode === 'replace')
    return replaceDisks(deps, ctx, { ...item, source: item.source }, vault, source, params, names);

  const target = params.target!;
  await ctx.startPhase('restore');
  const qcow2 = params.format === 'qcow2';
  // Configuration and description through the engine's restore; disks too when raw.
  const restored = await restoreTree(ctx, source, target, qcow2 ? { exclude: ['/disks'] } : {});
  const bytes = qcow2
    ? await restoreQcow2Disks(source.vault, source.point, target, names, ctx.signal)
    : restored.bytes;
  const diskPath = (name: string) => join(target, 'disks', qcow2 ? `${name}.qcow2` : name);
  const reidentified =
    mode === 'new-machine'
      ? await reidentifyConfigs(target, params.newName!, description, diskPath)
      : undefined;
  await ctx.finishPhase('restore');
  const verified = await verifyPhase(
    ctx,
    source,
    target,
    params.verify === true && !qcow2 && mode === 'disks',
  );
  return {
    as: mode,
    format: qcow2 ? 'qcow2' : 'raw',
    target,
    disks: names.map((n) => diskPath(n)),
    configs: description.configs.map((c) => join(target, 'config', c)),
    bytes,
    ...(reidentified ? { newName: params.newName, reidentified } : {}),
    verified,
  };
}

async function replaceDisks(
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

async function restoreTree(
  ctx: JobContext,
  source: { vault: Vault; point: Point },
  target: string,
  filter: { include?: string[]; exclude?: string[] },
) {
  const opener = createBlobOpener(source.vault.keys.encryption);
  const restorer = new Restorer(source.vault, source.point, {
    target,
    include: filter.include ?? [],
    exclude: filter.exclude ?? [],
    overwrite: 'if-changed',
    signal: ctx.signal,
    opener,
    onError: (path, error) => ctx.itemError({ path, message: describeError(error) }),
  });
  const report = (): void =>
    ctx.progress('restore', {
      bytes: restorer.progress.bytes,
      items: restorer.progress.files,
      totalBytes: source.point.stats.bytes,
    });
  const timer = setInterval(report, 1000);
  try {
    const progress = await restorer.run();
    if (progress.errors > 0)
      throw new HoldfastError(
        'RESTORE_WRITE_FAILED',
        `${progress.errors} entries could not be restored under ${target}; see the job's errors.`,
      );
    return progress;
  } finally {
    clearInterval(timer);
    report();
    await opener.close();
  }
}

async function verifyPhase(
  ctx: JobContext,
  source: { vault: Vault; point: Point },
  target: string,
  wanted: boolean,
): Promise<{ checked: number; bytes: number } | null> {
  if (!wanted) {
    await ctx.skipPhase('verify');
    return null;
  }
  await ctx.startPhase('verify');
  const result = await verifyOrThrow(ctx, source, target, {});
  await ctx.finishPhase('verify');
  return result;
}

async function verifyOrThrow(
  ctx: JobContext,
  source: { vault: Vault; point: Point },
  target: string,
  filter: { include?: string[] },
): Promise<{ checked: number; bytes: number }> {
  const mismatches: string[] = [];
  const result = await verifyRestore(
    source.vault,
    source.point,
    target,
    { include: filter.include ?? [], exclude: [] },
    (path, reason) => mismatches.push(`${path}: ${reason}`),
    ctx.signal,
  );
  if (mismatches.length > 0)
    throw new HoldfastError(
      'RESTORE_WRITE_FAILED',
      `Verification failed: ${mismatches.slice(0, 5).join('; ')}`,
    );
  return result;
}
