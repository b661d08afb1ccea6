import type { ItemRecord, ItemSource, PointRecord } from '../catalog/index.js';
import { machineDisks } from '../workloads/index.js';
import { isAgentItem } from '../catalog/index.js';
import { HoldfastError } from '../core/index.js';
import { BACKUP_PHASES, Scheduler } from '../jobs/index.js';
import type { ItemView, JobView, PointView, ProtectInput, RestoreInput } from './api-model.js';
import { refuseDeletion, refuseShorterRetention } from './immutability.js';
import { itemPointByRef } from './item-points.js';
import { itemNamed, nameLookup, policyNamed, vaultNamed } from './names.js';
import { RESTORE_PHASES, type RestoreJobParams } from './restore-job.js';
import { REPLACE_PHASES } from './machine-restore-job.js';
import { machineRestoreShape } from './machine-restore.js';
import { RETENTION_PHASES } from '../jobs/index.js';
import type { ServiceDeps } from './service-deps.js';
import { itemView, jobView, pointView } from './views.js';

const DAY_MS = 86_400_000;

/**
 * Protected items and their life (docs/concepts.md): protect, change policy, stop (keeping or
 * deleting data), undelete, resume; back up now; list points; restore.
 */
export class ItemService {
  constructor(private readonly deps: ServiceDeps) {}

  async protect(input: ProtectInput): Promise<ItemView> {
    const { catalog, clock } = this.deps;
    if (await catalog.items.byName(input.name))
      throw new HoldfastError('RESOURCE_EXISTS', `An item named '${input.name}' already exists.`);
    const vault = await vaultNamed(catalog, input.vault);
    const policy = await policyNamed(catalog, input.policy);
    const item = await catalog.items.create({
      name: input.name,
      ...itemSource(input),
      vaultId: vault.id,
      policyId: policy.id,
      // The server never runs the backups of an agent's item.
      nextRunAt: input.agent === true ? null : Scheduler.firstRun(policy.spec, clock.now()),
    });
    return this.view(item);
  }

  async list(): Promise<ItemView[]> {
    const names = await nameLookup(this.deps.catalog);
    const items = await this.deps.catalog.items.list();
    return Promise.all(
      items.map(async (i) =>
        itemView(i, names, (await this.deps.catalog.points.forItem(i.id)).length),
      ),
    );
  }

  async show(name: string): Promise<ItemView> {
    return this.view(await itemNamed(this.deps.catalog, name));
  }

  /** Moves an item to another policy; its next run follows the new schedule. */
  async setPolicy(name: string, policyName: string): Promise<ItemView> {
    const item = await itemNamed(this.deps.catalog, name);
    const policy = await policyNamed(this.deps.catalog, policyName);
    const current =
      item.policyId === null ? undefined : await this.deps.catalog.policies.byId(item.policyId);
    if (current) await refuseShorterRetention(this.deps.catalog, [item], current.spec, policy.spec);
    await this.deps.catalog.items.update(item.id, {
      policyId: policy.id,
      ...(item.state === 'protected'
        ? { nextRunAt: Scheduler.nextRunOf(item, policy.spec, this.deps.clock.now()) }
        : {}),
    });
    return this.show(name);
  }

  /**
   * Stops protection. Keeping data: no new backups, points stay until their expiry. Deleting
   * data: the item is soft-deleted and its points are purged after the vault's soft-delete
   * days — or at once when soft delete is off.
   */
  async stop(name: string, deleteData: boolean): Promise<ItemView> {
    const { catalog, clock } = this.deps;
    const item = await itemNamed(catalog, name);
    if (item.state === 'soft_deleted')
      throw new HoldfastError(
        'STATE_CONFLICT',
        `Item '${name}' is already deleted (purge on ${new Date(item.purgeAt ?? 0).toISOString()}).`,
      );
    const vault = await catalog.vaults.byId(item.vaultId);
    if (deleteData && vault)
      refuseDeletion(vault, `stopping protection of '${name}' with its data deleted`);
    await this.cancelBackups(item);
    if (!deleteData) {
      if (item.state === 'stopped')
        throw new HoldfastError('STATE_CONFLICT', `Protection of '${name}' is already stopped.`);
      await catalog.items.update(item.id, { state: 'stopped', nextRunAt: null });
      return this.show(name);
    }
    const now = clock.now();
    const softDays = vault && vault.softDelete.state !== 'off' ? vault.softDelete.days : 0;
    await catalog.items.update(item.id, {
      state: 'soft_deleted',
      nextRunAt: null,
      deletedAt: now,
      purgeAt: now + softDays * DAY_MS,
    });
    if (softDays === 0)
      await catalog.jobs.create({
        type: 'retention',
        trigger: 'system',
        vaultId: item.vaultId,
        phases: RETENTION_PHASES,
        maxRetries: this.deps.jobRetries,
      });
    this.deps.kick();
    return this.show(name);
  }

  /** Brings a soft-deleted item back, protection stopped with its data kept (as Azure does). */
  async undelete(name: string): Promise<ItemView> {
    const item = await itemNamed(this.deps.catalog, name);
    if (item.state !== 'soft_deleted')
      throw new HoldfastError(
        'STATE_CONFLICT',
        `Item '${name}' is not deleted (state: ${item.state}).`,
      );
    await this.deps.catalog.items.update(item.id, {
      state: 'stopped',
      deletedAt: null,
      purgeAt: null,
    });
    return this.show(name);
  }

  /** Resumes protection of a stopped item under its policy. */
  async resume(name: string): Promise<ItemView> {
    const { catalog, clock } = this.deps;
    const item = await itemNamed(catalog, name);
    if (item.state !== 'stopped')
      throw new HoldfastError(
        'STATE_CONFLICT',
        item.state === 'soft_deleted'
          ? `Item '${name}' is deleted: undelete it first.`
          : `Item '${name}' is already protected.`,
      );
    const policy = item.policyId === null ? undefined : await catalog.policies.byId(item.policyId);
    if (policy === undefined)
      throw new HoldfastError('STATE_CONFLICT', `Item '${name}' has no policy: set one first.`);
    await catalog.items.update(item.id, {
      state: 'protected',
      nextRunAt: Scheduler.nextRunOf(item, policy.spec, clock.now()),
    });
    return this.show(name);
  }

  /** Queues a backup now; refused while another backup of the item has not ended. */
  async backupNow(name: string): Promise<JobView> {
    const { catalog } = this.deps;
    const item = await itemNamed(catalog, name);
    if (item.state !== 'protected')
      throw new HoldfastError(
        'STATE_CONFLICT',
        `Item '${name}' is not protected (state: ${item.state}); resume it first.`,
      );
    if (isAgentItem(item))
      throw new HoldfastError(
        'STATE_CONFLICT',
        `Item '${name}' is backed up by its agent, not by the server; run 'holdfast backup' on the agent's host.`,
      );
    const active = await catalog.jobs.active('backup', { itemId: item.id });
    if (active.length > 0)
      throw new HoldfastError(
        'STATE_CONFLICT',
        `A backup of '${name}' is already ${active[0]!.state} (job ${active[0]!.id}).`,
      );
    const job = await catalog.jobs.create({
      type: 'backup',
      trigger: 'manual',
      itemId: item.id,
      vaultId: item.vaultId,
      phases: BACKUP_PHASES,
      maxRetries: this.deps.jobRetries,
    });
    this.deps.kick();
    return jobView(job, await nameLookup(catalog));
  }

  /**
   * The item's points. `from: 'secondary'`: only those its GRS vault's secondary copy holds
   * now (read from the copy itself), tier `vault` — what a cross-region restore can use.
   */
  async points(name: string, from: 'primary' | 'secondary' = 'primary'): Promise<PointView[]> {
    const item = await itemNamed(this.deps.catalog, name);
    const points = await this.deps.catalog.points.forItem(item.id);
    if (from === 'primary') return points.map((p) => pointView(p, item.name));
    return (await this.onSecondary(item, points)).map((p) =>
      pointView({ ...p, snapshotRef: null }, item.name),
    );
  }

  /** Those of `points` the secondary copy of the item's GRS vault holds now. */
  private async onSecondary(item: ItemRecord, points: PointRecord[]): Promise<PointRecord[]> {
    const vault = await this.deps.catalog.vaults.byId(item.vaultId);
    if (vault === undefined) return [];
    const copy = await this.deps.access.open(vault, { index: 'none', from: 'secondary' });
    const held = new Set(await copy.listObjects('point'));
    return points.filter((p) => p.vaultRef !== null && held.has(p.vaultRef));
  }

  /** Queues a restore of one of the item's points (`latest` or an id). */
  async restore(name: string, input: RestoreInput): Promise<JobView> {
    const { catalog } = this.deps;
    const item = await itemNamed(catalog, name);
    let points = await catalog.points.forItem(item.id);
    // From the secondary, `latest` is the newest point the copy holds, which may be older
    // than the newest one (not yet replicated when the primary was lost).
    if (input.from === 'secondary' && input.point === 'latest')
      points = await this.onSecondary(item, points);
    const where = input.from === 'secondary' ? ' on the secondary copy' : '';
    const point = itemPointByRef(points, input.point, name, where);
    const params: RestoreJobParams = {
      point: point.id,
      ...restoreShape(item, input),
      ...(input.include ? { include: input.include } : {}),
      ...(input.exclude ? { exclude: input.exclude } : {}),
      ...(input.overwrite ? { overwrite: input.overwrite } : {}),
      ...(input.verify !== undefined ? { verify: input.verify } : {}),
      ...(input.tier ? { tier: input.tier } : {}),
      ...(input.from ? { from: input.from } : {}),
    };
    const job = await catalog.jobs.create({
      type: 'restore',
      trigger: 'manual',
      itemId: item.id,
      vaultId: item.vaultId,
      params: { ...params },
      phases: params.as === 'replace' ? REPLACE_PHASES : RESTORE_PHASES,
      maxRetries: this.deps.jobRetries,
    });
    this.deps.kick();
    return jobView(job, await nameLookup(catalog));
  }

  private async cancelBackups(item: ItemRecord): Promise<void> {
    for (const job of await this.deps.catalog.jobs.active('backup', { itemId: item.id }))
      await this.deps.runner.cancel(job.id).catch(() => undefined);
  }

  private async view(item: ItemRecord): Promise<ItemView> {
    const names = await nameLookup(this.deps.catalog);
    return itemView(item, names, (await this.deps.catalog.points.forItem(item.id)).length);
  }
}

/** What a new item protects, from the request (machine disks checked and named here). */
function itemSource(input: ProtectInput): ItemSource {
  const m = input.machine;
  if (input.workload !== 'machine' || m === undefined)
    return {
      workload: 'files',
      source: {
        paths: input.paths ?? [],
        excludes: input.excludes ?? [],
        oneFileSystem: input.oneFileSystem ?? false,
        ...(input.agent === true ? { agent: true } : {}),
      },
    };
  if (input.agent === true || input.paths !== undefined)
    throw new HoldfastError('USAGE_INVALID', 'A machine item takes disks, not paths or an agent.');
  const excludeDisks = m.excludeDisks ?? [];
  const scripts = {
    ...(m.preScript ? { pre: m.preScript } : {}),
    ...(m.postScript ? { post: m.postScript } : {}),
    ...(m.scriptTimeoutSeconds ? { timeoutSeconds: m.scriptTimeoutSeconds } : {}),
    ...(m.scriptRetries !== undefined ? { retries: m.scriptRetries } : {}),
    ...(m.continueOnScriptFailure ? { continueOnFailure: true } : {}),
  };
  if ((m.preScript === undefined) !== (m.postScript === undefined))
    throw new HoldfastError(
      'USAGE_INVALID',
      'Give a pre-snapshot script and a post-snapshot script together: the post script undoes what the pre script did.',
    );
  return {
    workload: 'machine',
    source: {
      disks: machineDisks(m.disks, excludeDisks),
      excludeDisks,
      configs: m.configs ?? [],
      ...(m.preScript ? { scripts } : {}),
      ...(m.freezeCommand ? { freezeCommand: m.freezeCommand } : {}),
      ...(m.fsfreeze?.length ? { fsfreeze: m.fsfreeze } : {}),
      ...(m.qemuMonitor ? { qemuMonitor: m.qemuMonitor } : {}),
    },
  };
}

/** Where and how a restore writes, checked against what the item is. */
function restoreShape(
  item: ItemRecord,
  input: RestoreInput,
): Pick<RestoreJobParams, 'target' | 'as' | 'format' | 'newName' | 'force' | 'paths'> {
  const machineOnly = (['as', 'format', 'newName', 'force', 'paths'] as const).filter(
    (k) => input[k] !== undefined,
  );
  if (item.workload !== 'machine') {
    if (machineOnly.length > 0)
      throw new HoldfastError(
        'USAGE_INVALID',
        `${machineOnly.join(', ')}: only for machine items; '${item.name}' protects files.`,
      );
    if (input.target === undefined)
      throw new HoldfastError('USAGE_INVALID', 'A restore needs a target directory.');
    return { target: input.target };
  }
  return machineRestoreShape(input);
}
