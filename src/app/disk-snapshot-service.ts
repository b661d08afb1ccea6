import { HoldfastError } from '../core/index.js';
import { BACKUP_PHASES } from '../jobs/index.js';
import type {
  DiskSnapshotInput,
  DiskSnapshotRestoreInput,
  DiskSnapshotView,
  JobView,
} from './api-model.js';
import type { DiskSnapshotParams } from './disk-snapshot-job.js';
import { refuseDeletion } from './immutability.js';
import { nameLookup, vaultNamed } from './names.js';
import { forgetPointOrRefuse } from './vault-maintenance.js';
import { RESTORE_PHASES, type RestoreJobParams } from './restore-job.js';
import type { ServiceDeps } from './service-deps.js';
import { jobView } from './views.js';

/**
 * Disk snapshots (docs/disks.md): named, incremental, read-only snapshots of one disk, listed
 * and restored on their own and kept until their own expiry.
 */
export class DiskSnapshotService {
  constructor(private readonly deps: ServiceDeps) {}

  /** Queues a snapshot of a disk into a vault, as a backup job. */
  async snapshot(input: DiskSnapshotInput): Promise<JobView> {
    const { catalog } = this.deps;
    if (await catalog.diskSnapshots.byName(input.name))
      throw new HoldfastError(
        'RESOURCE_EXISTS',
        `A disk snapshot named '${input.name}' already exists.`,
      );
    const vault = await vaultNamed(catalog, input.vault);
    const params: DiskSnapshotParams = {
      name: input.name,
      disk: input.disk,
      keepDays: input.keepDays ?? null,
    };
    const job = await catalog.jobs.create({
      type: 'backup',
      trigger: 'manual',
      vaultId: vault.id,
      params: { diskSnapshot: params },
      phases: BACKUP_PHASES,
      maxRetries: this.deps.jobRetries,
    });
    this.deps.kick();
    return jobView(job, await nameLookup(catalog));
  }

  async list(): Promise<DiskSnapshotView[]> {
    const names = await nameLookup(this.deps.catalog);
    return (await this.deps.catalog.diskSnapshots.list()).map((s) => ({
      name: s.name,
      vault: names.vault(s.vaultId) ?? s.vaultId,
      disk: s.diskPath,
      size: s.size,
      storedBytes: s.storedBytes,
      createdAt: new Date(s.createdAt).toISOString(),
      expiresAt: s.expiresAt === null ? null : new Date(s.expiresAt).toISOString(),
    }));
  }

  /**
   * Deletes a snapshot before its expiry: its point leaves the vault, then its row. Refused on
   * an immutable vault, as deleting any point is.
   */
  async delete(name: string): Promise<DiskSnapshotView> {
    const { catalog } = this.deps;
    const snapshot = await catalog.diskSnapshots.byName(name);
    const view = (await this.list()).find((s) => s.name === name);
    if (snapshot === undefined || view === undefined)
      throw new HoldfastError('RESOURCE_NOT_FOUND', `No disk snapshot named '${name}'.`);
    const record = await catalog.vaults.byId(snapshot.vaultId);
    if (record === undefined)
      throw new HoldfastError(
        'RESOURCE_NOT_FOUND',
        `The vault of disk snapshot '${name}' no longer exists.`,
      );
    refuseDeletion(record, `deleting disk snapshot '${name}'`);
    const vault = await this.deps.access.open(record, { index: 'none' });
    await forgetPointOrRefuse(vault, snapshot.vaultRef, `Disk snapshot '${name}'`);
    await catalog.diskSnapshots.delete(snapshot.id);
    return view;
  }

  /** Queues a restore of a snapshot's disk under `target/disks/`. */
  async restore(name: string, input: DiskSnapshotRestoreInput): Promise<JobView> {
    const { catalog } = this.deps;
    const snapshot = await catalog.diskSnapshots.byName(name);
    if (snapshot === undefined)
      throw new HoldfastError(
        'RESOURCE_NOT_FOUND',
        `No disk snapshot named '${name}'; list them with 'holdfast disk snapshots'.`,
      );
    const params: RestoreJobParams = {
      point: '',
      diskSnapshot: name,
      target: input.target,
      ...(input.format ? { format: input.format } : {}),
    };
    const job = await catalog.jobs.create({
      type: 'restore',
      trigger: 'manual',
      vaultId: snapshot.vaultId,
      params: { ...params },
      phases: RESTORE_PHASES,
      maxRetries: this.deps.jobRetries,
    });
    this.deps.kick();
    return jobView(job, await nameLookup(catalog));
  }
}
