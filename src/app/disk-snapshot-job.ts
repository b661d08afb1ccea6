import { createHash } from 'node:crypto';
import type { VaultRecord } from '../catalog/index.js';
import { HoldfastError, isHoldfastError } from '../core/index.js';
import type { JobContext } from '../jobs/index.js';
import { machineDisks, type MachineDisk } from '../workloads/index.js';
import type { JobDeps } from './job-deps.js';
import { backupMachine } from './machine-backup.js';
import { runScript } from './machine-job.js';
import { restoreQcow2Disks } from './machine-restore.js';
import { restoreTree, underRestoreLock } from './machine-restore-steps.js';
import { lockNewPoint } from './object-locking.js';
import { queueReplication } from './redundancy.js';
import { listPoints } from './resolve-point.js';
import { refreshVaultUsage } from './vault-usage.js';

/** What a disk snapshot job is queued with. */
export interface DiskSnapshotParams {
  readonly name: string;
  /** The disk: an image file or a block device. */
  readonly disk: string;
  /** Days until it expires; null keeps it indefinitely. */
  readonly keepDays: number | null;
}

const DAY_MS = 86_400_000;

/** The disk as a machine disk: its file name when usable, else `disk`. */
function asMachineDisk(path: string): MachineDisk {
  try {
    return machineDisks([path], [])[0]!;
  } catch (error) {
    if (!isHoldfastError(error, 'USAGE_INVALID')) throw error;
    return { name: 'disk', path };
  }
}

/**
 * Takes a named snapshot of one disk straight into the vault (docs/disks.md "Disk snapshots"):
 * captured through its own mirror and stored incrementally on the disk's previous snapshot,
 * locked for its expiry on an immutable vault, then recorded. A retried job finds its point by
 * the `job:` tag and does not take a second one.
 */
export async function takeDiskSnapshot(
  deps: JobDeps,
  ctx: JobContext,
  vault: VaultRecord,
  params: DiskSnapshotParams,
): Promise<Record<string, unknown>> {
  await ctx.startPhase('snapshot');
  const target = await deps.access.open(vault, { index: 'strict' });
  const diskTag = `disk:${params.disk}`;
  let point = (await listPoints(target)).find((p) => p.tags.includes(`job:${ctx.job.id}`));
  if (point === undefined) {
    const made = await backupMachine(target, {
      name: params.name,
      source: { disks: [asMachineDisk(params.disk)], excludeDisks: [], configs: [] },
      mirrorDir: deps.access.diskMirrorDir(
        createHash('sha256').update(params.disk).digest('hex').slice(0, 24),
      ),
      tags: [`disk-snapshot:${params.name}`, diskTag, `job:${ctx.job.id}`],
      runScript,
      now: () => deps.clock.now(),
      notice: (message) => ctx.itemError({ path: params.disk, message }),
      findParent: async () =>
        (await listPoints(target)).filter((p) => p.tags.includes(diskTag)).pop(),
      signal: ctx.signal,
      onProgress: (p) =>
        ctx.progress('snapshot', { bytes: p.bytes, items: p.disks, totalBytes: p.totalBytes }),
    });
    point = made.point;
  }
  const now = deps.clock.now();
  const expiresAt = params.keepDays === null ? null : now + params.keepDays * DAY_MS;
  const locksSet = await lockNewPoint(vault, target, point.id, expiresAt, ctx.signal);
  const record =
    (await deps.catalog.diskSnapshots.byName(params.name)) ??
    (await deps.catalog.diskSnapshots.create({
      name: params.name,
      vaultId: vault.id,
      diskPath: params.disk,
      vaultRef: point.id,
      size: point.stats.bytes,
      storedBytes: point.stats.storedBytes,
      createdAt: now,
      expiresAt,
    }));
  await ctx.finishPhase('snapshot', { vaultRef: point.id, locksSet });
  await ctx.skipPhase('transfer');
  await refreshVaultUsage(deps.catalog, deps.clock, vault, target, ctx.signal);
  await queueReplication(deps, vault);
  return {
    diskSnapshot: record.name,
    disk: params.disk,
    vaultRef: point.id,
    bytes: point.stats.bytes,
    newBytes: point.stats.newBytes,
    storedBytes: point.stats.storedBytes,
    expiresAt: expiresAt === null ? null : new Date(expiresAt).toISOString(),
  };
}

/** What a disk snapshot restore is queued with. */
export interface DiskSnapshotRestoreParams {
  readonly diskSnapshot: string;
  readonly target: string;
  readonly format?: 'raw' | 'qcow2';
}

/** Writes a disk snapshot's disk under `target/disks/`, raw (sparse) or qcow2. */
export async function restoreDiskSnapshot(
  deps: JobDeps,
  ctx: JobContext,
  vault: VaultRecord,
  params: DiskSnapshotRestoreParams,
): Promise<Record<string, unknown>> {
  const record = await deps.catalog.diskSnapshots.byName(params.diskSnapshot);
  if (record === undefined)
    throw new HoldfastError(
      'RESOURCE_NOT_FOUND',
      `No disk snapshot named '${params.diskSnapshot}'.`,
    );
  const opened = await deps.access.open(vault, { index: 'reading' });
  const point = (await listPoints(opened)).find((p) => p.id === record.vaultRef);
  if (point === undefined)
    throw new HoldfastError(
      'POINT_NOT_FOUND',
      `Disk snapshot '${record.name}' is missing from vault '${vault.name}'. Run a verify job.`,
    );
  await ctx.startPhase('restore');
  return underRestoreLock(opened, ctx.signal, async () => {
    const name = point.paths[0]?.slice('disks/'.length) ?? 'disk';
    if (params.format === 'qcow2') {
      await restoreQcow2Disks(opened, point, params.target, [name], ctx.signal);
    } else {
      await restoreTree(ctx, { vault: opened, point }, params.target, { include: ['/disks'] });
    }
    await ctx.finishPhase('restore');
    await ctx.skipPhase('verify');
    const file = params.format === 'qcow2' ? `${name}.qcow2` : name;
    return {
      diskSnapshot: record.name,
      target: params.target,
      disk: `${params.target}/disks/${file}`,
    };
  });
}
