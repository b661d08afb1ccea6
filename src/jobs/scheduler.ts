import type { Catalog, ItemRecord, VaultRecord } from '../catalog/index.js';
import { isAgentItem } from '../catalog/index.js';
import type { Clock } from '../core/index.js';
import { parsePolicySpec } from './policy.js';
import { isEmptyPlan, planRetention } from './retention-plan.js';
import { nextRunAfter } from './schedule.js';

/** Phases of a backup job (docs/jobs.md). */
export const BACKUP_PHASES = ['snapshot', 'transfer'] as const;
/** Phases of a retention job. */
export const RETENTION_PHASES = ['expire', 'prune'] as const;

/** How often a GRS vault's secondary copy is checked. */
export const SECONDARY_CHECK_EVERY_MS = 24 * 3_600_000;

/** Options of {@link Scheduler}. */
export interface SchedulerOptions {
  readonly catalog: Catalog;
  readonly clock: Clock;
  /** Retries a scheduled backup gets before it fails for good. */
  readonly backupRetries: number;
  readonly log?: (level: 'info' | 'warn', message: string, fields: object) => void;
}

/**
 * Turns policies into jobs. Each tick queues a backup for every protected item whose next run
 * has come, then moves the item's next run past now: after downtime a missed backup runs once,
 * not once per missed slot, and a backup still running makes the slot pass without a second
 * one (runs of one item never overlap). It also queues a retention run for each vault that
 * has points past their expiry or soft-deleted items past their purge date.
 */
export class Scheduler {
  constructor(private readonly options: SchedulerOptions) {}

  /** One pass; returns how many jobs it queued. */
  async tick(): Promise<{ backups: number; retention: number }> {
    const now = this.options.clock.now();
    let backups = 0;
    for (const item of await this.options.catalog.items.due(now))
      if (await this.scheduleBackup(item, now)) backups += 1;
    let retention = 0;
    for (const vault of await this.options.catalog.vaults.list()) {
      if (await this.scheduleRetention(vault, now)) retention += 1;
      await this.scheduleSecondaryCheck(vault, now);
    }
    return { backups, retention };
  }

  /** An item's next run under a policy: none for an item its agent backs up. */
  static nextRunOf(item: ItemRecord, policySpec: unknown, now: number): number | null {
    return isAgentItem(item) ? null : Scheduler.firstRun(policySpec, now);
  }

  /** The first run of an item under a policy, after `now`. */
  static firstRun(policySpec: unknown, now: number): number {
    const spec = parsePolicySpec(policySpec);
    return nextRunAfter(spec.schedule, spec.timezone, now);
  }

  private async scheduleBackup(item: ItemRecord, now: number): Promise<boolean> {
    const { catalog } = this.options;
    const policy = item.policyId === null ? undefined : await catalog.policies.byId(item.policyId);
    // No policy, or an item its agent backs up (a policy change or resume gave it a next run).
    if (policy === undefined || isAgentItem(item)) {
      await catalog.items.update(item.id, { nextRunAt: null });
      return false;
    }
    const next = Scheduler.firstRun(policy.spec, now);
    const running = await catalog.jobs.active('backup', { itemId: item.id });
    let queued = false;
    if (running.length === 0) {
      await catalog.jobs.create({
        type: 'backup',
        trigger: 'schedule',
        itemId: item.id,
        vaultId: item.vaultId,
        phases: BACKUP_PHASES,
        maxRetries: this.options.backupRetries,
        scheduledFor: item.nextRunAt,
      });
      queued = true;
    } else {
      this.options.log?.('warn', 'scheduled backup skipped: the previous one is still running', {
        item: item.name,
        job: running[0]?.id,
      });
    }
    await catalog.items.update(item.id, { nextRunAt: next });
    return queued;
  }

  private async scheduleRetention(vault: VaultRecord, now: number): Promise<boolean> {
    const { catalog } = this.options;
    if (isEmptyPlan(await planRetention(catalog, vault.id, now))) return false;
    if ((await catalog.jobs.active('retention', { vaultId: vault.id })).length > 0) return false;
    await catalog.jobs.create({
      type: 'retention',
      trigger: 'schedule',
      vaultId: vault.id,
      phases: RETENTION_PHASES,
      maxRetries: this.options.backupRetries,
    });
    return true;
  }

  /**
   * Queues a check of a GRS vault's secondary copy (structure and a tenth of its packs read
   * and authenticated) once a day, unless one has not ended.
   */
  private async scheduleSecondaryCheck(vault: VaultRecord, now: number): Promise<void> {
    const { catalog } = this.options;
    if (vault.redundancy !== 'grs' || vault.replication.paused) return;
    if (vault.replication.lastReplicatedAt == null) return;
    const last = vault.replication.lastVerifiedAt ?? 0;
    if (now - last < SECONDARY_CHECK_EVERY_MS) return;
    if ((await catalog.jobs.active('verify', { vaultId: vault.id })).length > 0) return;
    await catalog.jobs.create({
      type: 'verify',
      trigger: 'schedule',
      vaultId: vault.id,
      params: { from: 'secondary', readDataPercent: 10 },
      phases: ['check'],
      maxRetries: this.options.backupRetries,
    });
  }
}
