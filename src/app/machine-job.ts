import type { ItemRecord } from '../catalog/index.js';
import type { Point, Vault } from '../engine/index.js';
import type { JobContext } from '../jobs/index.js';
import { runHookScript, type MachineSource, type ScriptRunner } from '../workloads/index.js';
import { pointTags } from './item-points.js';
import type { JobDeps } from './job-deps.js';
import { backupMachine } from './machine-backup.js';

/** A machine item, its source known to be a machine's. */
export type MachineItem = ItemRecord & {
  readonly workload: 'machine';
  readonly source: MachineSource;
};

/** Runs hook scripts with the safety rule and timeouts of docs/hook-scripts.md. */
export const runScript: ScriptRunner = (path, args, options) =>
  runHookScript(path, { args, ...options });

/**
 * The snapshot phase of a machine's backup: capture at one instant, then store the changed
 * blocks in the snapshot store. Consistency fallbacks and script failures become the job's
 * warnings; the consistency reached and the freeze window go into the phase's checkpoint.
 */
export async function snapshotMachine(
  deps: JobDeps,
  ctx: JobContext,
  item: MachineItem,
  store: Vault,
  findParent: () => Promise<Point | undefined>,
): Promise<{ point: Point; capture: Record<string, unknown> }> {
  const { point, captured } = await backupMachine(store, {
    name: item.name,
    source: item.source,
    mirrorDir: deps.access.mirrorDir(item.id),
    tags: pointTags(item, ctx.job.id),
    runScript,
    now: () => deps.clock.now(),
    notice: (message) => ctx.itemError({ path: item.name, message }),
    findParent,
    signal: ctx.signal,
    onProgress: (p) =>
      ctx.progress('snapshot', { bytes: p.bytes, items: p.disks, totalBytes: p.totalBytes }),
  });
  const capture = {
    consistency: captured.consistency,
    frozenMs: captured.frozenMs,
    disks: captured.disks.map((d) => ({
      name: d.name,
      bytesRead: d.bytesRead,
      changedBytes: d.changed ? d.changed.reduce((n, r) => n + r.length, 0) : null,
      cloned: d.cloned,
    })),
    excludedDisks: captured.excluded.map((d) => d.name),
    scripts: captured.scripts,
  };
  return { point, capture };
}
