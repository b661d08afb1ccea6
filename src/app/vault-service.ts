import { join } from 'node:path';
import type { ImmutabilityState, SoftDeleteState, VaultRecord } from '../catalog/index.js';
import { describeError, HoldfastError, isHoldfastError } from '../core/index.js';
import { DEFAULT_VAULT_CONFIG, Vault, type Credential } from '../engine/index.js';
import type { CreateVaultInput, JobView, UpdateVaultInput, VaultView } from './api-model.js';
import { refuseDeletion, setImmutability } from './immutability.js';
import { nameLookup, vaultNamed } from './names.js';
import { lockNewPoint } from './object-locking.js';
import { VERIFY_PHASES } from './verify-job.js';
import { normalizeLocation, openBackend } from './open-vault.js';
import { changeRedundancy, failover, replicateNow, reprotect } from './redundancy.js';
import { recordLag } from './replicate-job.js';
import { createServerKeyFile, readKeyFile } from './server-keys.js';
import type { ServiceDeps } from './service-deps.js';
import { jobView, vaultView } from './views.js';

/** Soft delete defaults (Azure's): on, 14 days, settable from 14 to 180. */
export const SOFT_DELETE_DEFAULT = { state: 'on' as SoftDeleteState, days: 14 };

/** Vaults: create or adopt, list, show, change settings, delete. */
export class VaultService {
  constructor(private readonly deps: ServiceDeps) {}

  /**
   * Creates a vault at `location` (default `<data-dir>/vaults/<name>`) unlocked by the given
   * passphrase or key file, or adopts the vault already there when that credential opens it.
   * Either way the server adds a key slot of its own for unattended work.
   */
  async create(input: CreateVaultInput): Promise<VaultView> {
    const { catalog, dataDir } = this.deps;
    if (await catalog.vaults.byName(input.name))
      throw new HoldfastError('RESOURCE_EXISTS', `A vault named '${input.name}' already exists.`);
    const location = normalizeLocation(input.location ?? join(dataDir, 'vaults', input.name));
    const secondary =
      input.secondaryLocation === undefined ? null : normalizeLocation(input.secondaryLocation);
    const taken = (await catalog.vaults.list()).flatMap((v) => [v.location, v.secondaryLocation]);
    for (const where of [location, secondary])
      if (where !== null && taken.includes(where))
        throw new HoldfastError(
          'RESOURCE_EXISTS',
          `Vault location ${where} is already registered.`,
        );
    if (secondary === location)
      throw new HoldfastError(
        'REQUEST_INVALID',
        'The secondary location must differ from the primary.',
      );
    const softDelete = checkSoftDelete(SOFT_DELETE_DEFAULT, input.softDelete ?? {});
    const credential: Credential =
      input.passphrase !== undefined
        ? { kind: 'passphrase', passphrase: input.passphrase }
        : await readKeyFile(input.keyFile ?? '');
    const backend = openBackend(location, { create: true });
    let vault: Vault;
    try {
      vault = await Vault.open(backend, credential);
    } catch (error) {
      if (!isHoldfastError(error, 'VAULT_NOT_FOUND')) throw error;
      vault = await Vault.init(backend, credential, {
        config: {
          ...DEFAULT_VAULT_CONFIG,
          compressionLevel: input.compressionLevel ?? DEFAULT_VAULT_CONFIG.compressionLevel,
        },
      });
    }
    const key = await createServerKeyFile(dataDir, input.name);
    await vault.addKey(key.credential, `holdfast server (${input.name})`);
    const record = await catalog.vaults.create({
      name: input.name,
      location,
      keyFile: key.path,
      vaultUid: vault.id,
      redundancy: secondary === null ? 'lrs' : 'grs',
      secondaryLocation: secondary,
      softDelete,
    });
    await this.deps.access.createSnapshots(record, vault);
    // The secondary starts as a full copy, so it is a readable vault from the first moment.
    if (secondary !== null) await replicateNow(this.deps, record);
    return this.show(input.name);
  }

  /** All vaults. */
  async list(): Promise<VaultView[]> {
    const items = await this.deps.catalog.items.list();
    return (await this.deps.catalog.vaults.list()).map((v) =>
      vaultView(v, items.filter((i) => i.vaultId === v.id).length, this.deps.clock.now()),
    );
  }

  /** One vault with its usage. */
  async show(name: string): Promise<VaultView> {
    const vault = await vaultNamed(this.deps.catalog, name);
    const items = (await this.deps.catalog.items.list({ vaultId: vault.id })).length;
    return vaultView(vault, items, this.deps.clock.now());
  }

  /**
   * Changes soft-delete settings (`always_on` cannot be left) or redundancy (only before the
   * vault's first recovery point, as Azure: the secondary would otherwise start incomplete).
   */
  async update(name: string, input: UpdateVaultInput): Promise<VaultView> {
    const vault = await vaultNamed(this.deps.catalog, name);
    if (input.softDelete !== undefined) {
      const next = checkSoftDelete(vault.softDelete, input.softDelete);
      if (next.state === 'off' || next.days < vault.softDelete.days)
        refuseDeletion(vault, 'turning soft delete off or shortening it');
      await this.deps.catalog.vaults.setSoftDelete(vault.id, next.state, next.days);
    }
    if (input.redundancy !== undefined || input.secondaryLocation !== undefined)
      await changeRedundancy(this.deps, vault, input.redundancy, input.secondaryLocation);
    return this.show(name);
  }

  /** Deletes a vault from the catalog (its data stays where it is); refused while it holds items. */
  async remove(name: string): Promise<void> {
    const vault = await vaultNamed(this.deps.catalog, name);
    const items = await this.deps.catalog.items.list({ vaultId: vault.id });
    if (items.length > 0) {
      const deleted = items.filter((i) => i.state === 'soft_deleted').map((i) => i.name);
      throw new HoldfastError(
        'RESOURCE_IN_USE',
        `Vault '${name}' still holds ${items.length} item(s) (${items.map((i) => i.name).join(', ')})` +
          (deleted.length
            ? `, of which soft-deleted: ${deleted.join(', ')} — they are purged on their purge date`
            : '') +
          '. Stop protection with --delete-data and wait for the purge first.',
      );
    }
    const active = await this.deps.catalog.jobs.list({
      vaultId: vault.id,
      states: ['queued', 'running', 'waiting_retry'],
    });
    if (active.length > 0)
      throw new HoldfastError(
        'RESOURCE_IN_USE',
        `Vault '${name}' has ${active.length} job(s) not yet ended.`,
      );
    await this.deps.catalog.vaults.delete(vault.id);
  }

  /** Measures how far a GRS vault's secondary is behind, now, and shows the vault. */
  async replication(name: string): Promise<VaultView> {
    const vault = await vaultNamed(this.deps.catalog, name);
    if (vault.redundancy !== 'grs')
      throw new HoldfastError('STATE_CONFLICT', `Vault '${name}' is not geo-redundant (lrs).`);
    let measureError: string | null = null;
    // A lost location is when this answer matters most: the last figures, and why not newer.
    if (!vault.replication.paused)
      await recordLag(this.deps.catalog, this.deps.clock, vault).catch((error: unknown) => {
        measureError = describeError(error);
      });
    const view = await this.show(name);
    return view.replication === null
      ? view
      : { ...view, replication: { ...view.replication, measureError } };
  }

  /** Fails a GRS vault over to its secondary (docs/redundancy.md). */
  async failover(name: string): Promise<VaultView> {
    await failover(this.deps, await vaultNamed(this.deps.catalog, name));
    return this.show(name);
  }

  /** Resumes replication after a failover, towards the old primary. */
  async reprotect(name: string): Promise<VaultView> {
    await reprotect(this.deps, await vaultNamed(this.deps.catalog, name));
    this.deps.kick();
    return this.show(name);
  }

  /** Sets immutability: `disabled`, `enabled` (reversible) or `locked` (for good). */
  async immutability(name: string, state: ImmutabilityState): Promise<VaultView> {
    await setImmutability(this.deps.catalog, await vaultNamed(this.deps.catalog, name), state);
    await this.lockKeptPoints(await vaultNamed(this.deps.catalog, name));
    return this.show(name);
  }

  /**
   * On a backend with object locks, locks the objects of every point the vault keeps until
   * its expiry, as new points are (docs/immutability.md, "Object locks").
   */
  private async lockKeptPoints(vault: VaultRecord): Promise<void> {
    const { catalog, access, clock } = this.deps;
    if (vault.immutability === 'disabled') return;
    const points = (await catalog.points.forVault(vault.id)).filter(
      (p) => p.vaultRef !== null && p.expiresAt !== null && p.expiresAt > clock.now(),
    );
    if (points.length === 0) return;
    // lockNewPoint reads the index only where the backend can lock.
    const opened = await access.open(vault, { index: 'none' });
    for (const point of points) await lockNewPoint(vault, opened, point.vaultRef!, point.expiresAt);
  }

  /** Queues a verify job reading `readDataPercent` of the packs. */
  async verify(
    name: string,
    readDataPercent: number,
    from: 'primary' | 'secondary' = 'primary',
  ): Promise<JobView> {
    const vault = await vaultNamed(this.deps.catalog, name);
    if (from === 'secondary' && vault.secondaryLocation === null)
      throw new HoldfastError('STATE_CONFLICT', `Vault '${name}' has no secondary copy (lrs).`);
    const job = await this.deps.catalog.jobs.create({
      type: 'verify',
      trigger: 'manual',
      vaultId: vault.id,
      params: { readDataPercent, from },
      phases: VERIFY_PHASES,
      maxRetries: 0,
    });
    this.deps.kick();
    return jobView(job, await nameLookup(this.deps.catalog));
  }

  /** The record behind a name (for other services). */
  record(name: string): Promise<VaultRecord> {
    return vaultNamed(this.deps.catalog, name);
  }
}

function checkSoftDelete(
  current: { state: SoftDeleteState; days: number },
  change: { state?: SoftDeleteState | undefined; days?: number | undefined },
): { state: SoftDeleteState; days: number } {
  const state = change.state ?? current.state;
  if (current.state === 'always_on' && state !== 'always_on')
    throw new HoldfastError(
      'SETTING_LOCKED',
      "Soft delete is 'always_on' on this vault; it cannot be turned off again.",
    );
  return { state, days: change.days ?? current.days };
}
