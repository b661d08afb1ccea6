import { join } from 'node:path';
import type { ItemRecord, VaultRecord } from '../catalog/index.js';
import { HoldfastError } from '../core/index.js';
import type { Point, Vault } from '../engine/index.js';
import type { JobContext } from '../jobs/index.js';
import type { JobDeps } from './job-deps.js';
import { extractFromMachinePoint } from './disk-browse.js';
import { replaceDisks } from './machine-replace.js';
import { restoreTree, verifyPhase } from './machine-restore-steps.js';
import {
  machineDescription,
  refusePartialMachine,
  reidentifyConfigs,
  restoreQcow2Disks,
} from './machine-restore.js';
import type { MachineRestoreMode, RestoreJobParams } from './restore-params.js';

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
    return replaceDisks(
      deps,
      ctx,
      { ...item, source: item.source },
      vault,
      source,
      params,
      description.disks,
    );

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
      ? await reidentifyConfigs(
          target,
          params.newName!,
          description,
          diskPath,
          qcow2 ? 'qcow2' : 'raw',
        )
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
