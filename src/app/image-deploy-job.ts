import { copyFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { VaultRecord } from '../catalog/index.js';
import { HoldfastError } from '../core/index.js';
import type { JobContext } from '../jobs/index.js';
import { baseReady, cloneDisk, ensureDir, findImagePoint } from './disk-images.js';
import type { JobDeps } from './job-deps.js';
import { restoreTree, underRestoreLock } from './machine-restore-steps.js';
import { machineDescription, reidentifyConfigs } from './machine-restore.js';

/** What an image deployment is queued with. */
export interface DeployParams {
  readonly image: string;
  readonly target: string;
  readonly newName?: string;
}

/**
 * Deploys an image as a new machine's disks under `target`: the image is restored once into a
 * base copy in the data directory, and every deployment clones the base's disks (sharing their
 * blocks copy-on-write where the file system can) and writes the configuration beside them,
 * renamed and re-identified when a new name is given (docs/disks.md "Disk images").
 */
export async function deployImage(
  deps: JobDeps,
  ctx: JobContext,
  vault: VaultRecord,
  params: DeployParams,
): Promise<Record<string, unknown>> {
  const opened = await deps.access.open(vault, { index: 'reading' });
  const point = await findImagePoint(opened, params.image);
  if (point === undefined)
    throw new HoldfastError(
      'RESOURCE_NOT_FOUND',
      `Vault '${vault.name}' holds no image '${params.image}'.`,
    );
  await ctx.startPhase('restore');
  const base = deps.access.imageDir(vault.id, point.id);
  if (!(await baseReady(base)))
    await underRestoreLock(opened, ctx.signal, async () => {
      await ensureDir(base);
      await restoreTree(ctx, { vault: opened, point }, base, {});
      await writeFile(join(base, '.complete'), point.id);
    });
  const description = await machineDescription(opened, point);
  await ensureDir(join(params.target, 'disks'));
  await ensureDir(join(params.target, 'config'));
  const disks: Array<{ name: string; path: string; how: string }> = [];
  for (const d of description.disks) {
    const path = join(params.target, 'disks', d.name);
    disks.push({ name: d.name, path, how: await cloneDisk(join(base, 'disks', d.name), path) });
  }
  for (const name of description.configs)
    await copyFile(join(base, 'config', name), join(params.target, 'config', name));
  await copyFile(join(base, 'machine.json'), join(params.target, 'machine.json'));
  const reidentified = params.newName
    ? await reidentifyConfigs(
        params.target,
        params.newName,
        description,
        (n) => join(params.target, 'disks', n),
        // Deployed disks are raw copies of the image's base.
        'raw',
      )
    : undefined;
  await ctx.finishPhase('restore');
  await ctx.skipPhase('verify');
  return {
    image: params.image,
    target: params.target,
    disks,
    ...(reidentified ? { newName: params.newName, reidentified } : {}),
  };
}
