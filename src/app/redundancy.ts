import type { VaultRecord } from '../catalog/index.js';
import { HoldfastError } from '../core/index.js';
import { normalizeLocation, openBackend } from './open-vault.js';
import { REPLICATE_PHASES } from './replicate-job.js';
import { replicateObjects } from './replication.js';
import type { ServiceDeps } from './service-deps.js';

/** Copies everything to the secondary now (vault creation, re-protection). */
export async function replicateNow(deps: ServiceDeps, vault: VaultRecord): Promise<void> {
  if (vault.secondaryLocation === null) return;
  const primary = openBackend(vault.location);
  const secondary = openBackend(vault.secondaryLocation, { create: true });
  try {
    await replicateObjects(primary, secondary);
  } finally {
    await Promise.all([primary.close(), secondary.close()]);
  }
  await deps.catalog.vaults.setReplication(vault.id, {
    objectsBehind: 0,
    bytesBehind: 0,
    behindSince: null,
    lastReplicatedAt: deps.clock.now(),
  });
}

/** Sets or removes the secondary; refused once the vault holds recovery points. */
export async function changeRedundancy(
  deps: ServiceDeps,
  vault: VaultRecord,
  redundancy: 'lrs' | 'grs' | undefined,
  secondaryLocation: string | undefined,
): Promise<void> {
  const wanted = redundancy ?? (secondaryLocation !== undefined ? 'grs' : vault.redundancy);
  if ((await deps.catalog.points.countForVault(vault.id)) > 0)
    throw new HoldfastError(
      'STATE_CONFLICT',
      `Vault '${vault.name}' already holds recovery points: its redundancy can no longer change ` +
        '(a new secondary would start incomplete). Create a new vault with the redundancy you want.',
    );
  if (wanted === 'grs' && secondaryLocation === undefined && vault.secondaryLocation === null)
    throw new HoldfastError('REQUEST_INVALID', "Redundancy 'grs' needs a secondaryLocation.");
  const secondary =
    wanted === 'lrs' ? null : normalizeLocation(secondaryLocation ?? vault.secondaryLocation ?? '');
  await deps.catalog.vaults.setRedundancy(vault.id, wanted, secondary);
  const updated = await deps.catalog.vaults.byId(vault.id);
  if (updated && secondary !== null) await replicateNow(deps, updated);
}

/**
 * Fails a GRS vault over: the secondary becomes the primary (backups and restores use it from
 * now on) and the old primary becomes the secondary, with replication paused until
 * {@link reprotect} — the old primary may be unreachable, or hold objects the secondary never
 * got, which re-protection then removes.
 */
export async function failover(deps: ServiceDeps, vault: VaultRecord): Promise<void> {
  if (vault.redundancy !== 'grs' || vault.secondaryLocation === null)
    throw new HoldfastError('STATE_CONFLICT', `Vault '${vault.name}' is not geo-redundant.`);
  if (vault.replication.paused)
    throw new HoldfastError(
      'STATE_CONFLICT',
      `Vault '${vault.name}' is already failed over; re-protect it first.`,
    );
  // What the copy does not hold (backups that had not reached it) is gone with the old
  // primary: its points lose the vault tier, and leave the catalog if that was their only one.
  const copy = await deps.access.open(vault, { index: 'none', from: 'secondary' });
  const held = new Set(await copy.listObjects('point'));
  await deps.catalog.vaults.swapLocations(vault.id, vault.secondaryLocation, vault.location);
  await deps.catalog.vaults.setReplication(vault.id, {
    paused: true,
    failedOverFrom: vault.location,
  });
  await deps.catalog.transaction(async (catalog) => {
    for (const point of await catalog.points.forVault(vault.id)) {
      if (point.vaultRef === null || held.has(point.vaultRef)) continue;
      if (point.snapshotRef === null) await catalog.points.delete(point.id);
      else await catalog.points.update(point.id, { vaultRef: null });
    }
  });
}

/** Resumes replication after a failover, now from the new primary to the old one. */
export async function reprotect(deps: ServiceDeps, vault: VaultRecord): Promise<void> {
  if (!vault.replication.paused)
    throw new HoldfastError('STATE_CONFLICT', `Vault '${vault.name}' is not failed over.`);
  const resumed = { ...vault, replication: { ...vault.replication, paused: false } };
  await deps.catalog.vaults.setReplication(vault.id, { paused: false });
  await queueReplication(deps, resumed);
}

/**
 * Queues a replicate job for a GRS vault unless one waits already, and marks the secondary as
 * behind from now if it was caught up (the lag clock starts when new data lands).
 */
export async function queueReplication(
  deps: Pick<ServiceDeps, 'catalog' | 'clock' | 'jobRetries'>,
  vault: VaultRecord,
): Promise<void> {
  if (vault.redundancy !== 'grs' || vault.replication.paused) return;
  if (vault.replication.behindSince == null)
    await deps.catalog.vaults.setReplication(vault.id, {
      behindSince: deps.clock.now(),
    });
  if ((await deps.catalog.jobs.active('replicate', { vaultId: vault.id })).length > 0) return;
  await deps.catalog.jobs.create({
    type: 'replicate',
    trigger: 'system',
    vaultId: vault.id,
    phases: REPLICATE_PHASES,
    maxRetries: deps.jobRetries,
  });
}
