import { realpath, rm, stat } from 'node:fs/promises';
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
import { processesUsing, replaceDiskFile, restoreQcow2Disks } from './machine-restore.js';
import {
  forgetQemuTracking,
  mirrorPath,
  openPointFile,
  writeDiskInPlace,
} from '../workloads/index.js';
import { listPoints } from './resolve-point.js';
import type { RestoreJobParams } from './restore-params.js';

/**
 * Replaces a machine's disks with a point's, after a safety snapshot of them (docs/disks.md
 * "Restore options"). Image files are restored beside the disk, in the disk's own format, and
 * renamed over it; block devices are written in place, only the blocks that differ.
 */
export async function replaceDisks(
  deps: JobDeps,
  ctx: JobContext,
  item: MachineItem,
  vault: VaultRecord,
  source: { vault: Vault; point: Point },
  params: RestoreJobParams,
  pointDisks: ReadonlyArray<{ readonly name: string; readonly format: 'raw' | 'qcow2' }>,
): Promise<Record<string, unknown>> {
  const disks = await Promise.all(
    pointDisks.map(async ({ name, format }) => {
      const disk = item.source.disks.find((d) => d.name === name);
      if (disk === undefined)
        throw new HoldfastError(
          'USAGE_INVALID',
          `Disk '${name}' of the point is no longer a disk of '${item.name}'; restore --as disks instead.`,
        );
      const device = (await stat(disk.path).catch(() => undefined))?.isBlockDevice() === true;
      if (device && format === 'qcow2')
        throw new HoldfastError(
          'USAGE_INVALID',
          `${disk.path} is a block device holding a qcow2 image; restore --as disks --format qcow2 and write the image onto it yourself.`,
        );
      // An image named through a symbolic link is replaced where the link leads: renaming over
      // the link itself would leave the machine's real disk untouched.
      const real = device ? disk.path : await realpath(disk.path).catch(() => disk.path);
      return { ...disk, format, device, real };
    }),
  );
  const users = await processesUsing(disks.map((d) => d.path));
  if (users.length > 0 && params.force !== true)
    throw new HoldfastError(
      'STATE_CONFLICT',
      `The machine looks running: ${users.map((u) => `process ${u.pid} has ${u.path} open`).join('; ')}. Shut it down first, or give --force.`,
    );
  const safety = await safetySnapshot(deps, ctx, item, vault);
  // These writes do not go through QEMU: its dirty bitmaps will not show them.
  for (const disk of disks)
    await forgetQemuTracking(mirrorPath(deps.access.mirrorDir(item.id), disk));
  await ctx.startPhase('restore');
  let bytes = 0;
  const staged: Array<{ from: string; to: string }> = [];
  for (const disk of disks.filter((d) => !d.device)) {
    // Restored beside the disk (same file system), then renamed over it: never half-replaced.
    const stage = join(dirname(disk.real), `.holdfast-restore-${ctx.job.id}`);
    if (disk.format === 'qcow2') {
      bytes += await restoreQcow2Disks(source.vault, source.point, stage, [disk.name], ctx.signal);
      staged.push({ from: join(stage, 'disks', `${disk.name}.qcow2`), to: disk.real });
      continue;
    }
    const filter = { include: [`/disks/${disk.name}`] };
    bytes += (await restoreTree(ctx, source, stage, filter)).bytes;
    if (params.verify === true) await verifyOrThrow(ctx, source, stage, filter);
    staged.push({ from: join(stage, 'disks', disk.name), to: disk.real });
  }
  const written: Array<{ device: string; bytesWritten: number }> = [];
  for (const disk of disks.filter((d) => d.device)) {
    const file = await openPointFile(source.vault, source.point, `disks/${disk.name}`);
    const onBytes = (n: number) =>
      ctx.progress('restore', {
        bytes: bytes + n,
        items: written.length,
        totalBytes: source.point.stats.bytes,
        totalItems: disks.length,
      });
    const result = await writeDiskInPlace(file, disk.path, { signal: ctx.signal, onBytes });
    bytes += result.bytesCompared;
    written.push({ device: disk.path, bytesWritten: result.bytesWritten });
    if (params.verify === true) {
      const left = await writeDiskInPlace(file, disk.path, {
        signal: ctx.signal,
        compareOnly: true,
      });
      if (left.bytesWritten > 0)
        throw new HoldfastError(
          'RESTORE_WRITE_FAILED',
          `Verification failed: ${disk.path} still differs from the point in ${left.bytesWritten} bytes after it was written.`,
        );
    }
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
    ...(written.length > 0 ? { devices: written } : {}),
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
  // The machine is stopped (or forced): no scripts, no freeze, no QEMU to ask.
  const {
    scripts: _scripts,
    freezeCommand: _freeze,
    fsfreeze: _fs,
    qemuMonitor: _qemu,
    ...quiet
  } = item.source;
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
