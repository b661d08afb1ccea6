import type { Catalog, ItemRecord, JobRecord, VaultRecord } from '../catalog/index.js';
import { HoldfastError, type Clock } from '../core/index.js';
import type { VaultAccess } from './vault-access.js';

/** What the job handlers of the control plane need. */
export interface JobDeps {
  readonly catalog: Catalog;
  readonly clock: Clock;
  readonly access: VaultAccess;
  /** Retries of jobs the handlers queue (replication after a backup). */
  readonly jobRetries: number;
}

/** The item and vault a job is about; throws when the catalog no longer has them. */
export async function jobSubject(
  deps: JobDeps,
  job: JobRecord,
): Promise<{ item: ItemRecord | undefined; vault: VaultRecord }> {
  const item = job.itemId === null ? undefined : await deps.catalog.items.byId(job.itemId);
  if (job.itemId !== null && item === undefined)
    throw new HoldfastError('RESOURCE_NOT_FOUND', `The item of job ${job.id} no longer exists.`);
  const vaultId = item?.vaultId ?? job.vaultId;
  const vault = vaultId === null ? undefined : await deps.catalog.vaults.byId(vaultId);
  if (vault === undefined)
    throw new HoldfastError('RESOURCE_NOT_FOUND', `The vault of job ${job.id} no longer exists.`);
  return { item, vault };
}
