import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Catalog, type JobRecord, type TokenRecord } from '../catalog/index.js';
import type { Clock } from '../core/index.js';
import { DEFAULT_RETRY, JobRunner, Scheduler, type RetrySettings } from '../jobs/index.js';
import { AuditLog } from './audit.js';
import { backupJobHandler } from './backup-job.js';
import { ItemService } from './item-service.js';
import { MachineService } from './machine-service.js';
import { DiskSnapshotService } from './disk-snapshot-service.js';
import type { JobDeps } from './job-deps.js';
import { JobService } from './job-service.js';
import { NotificationService } from './notification-service.js';
import { PolicyService } from './policy-service.js';
import { replicateJobHandler } from './replicate-job.js';
import { restoreJobHandler } from './restore-job.js';
import { retentionJobHandler } from './retention-job.js';
import type { ServiceDeps } from './service-deps.js';
import { TokenService } from './token-service.js';
import { recordAgentPoint } from './agent-points.js';
import { VaultObjects } from './vault-objects.js';
import { VaultAccess } from './vault-access.js';
import { VaultService } from './vault-service.js';
import { verifyJobHandler } from './verify-job.js';

/** Logging as the control plane uses it; the server passes its structured logger. */
export type PlaneLog = (level: 'info' | 'warn' | 'error', message: string, fields: object) => void;

/** Options of {@link ControlPlane.open}. */
export interface ControlPlaneOptions {
  readonly dataDir: string;
  readonly clock: Clock;
  /** Jobs run at once on this host (default 2). */
  readonly maxConcurrentJobs?: number;
  /** Retries of a failed job (default 3). */
  readonly jobRetries?: number;
  readonly retry?: RetrySettings;
  /** How often the scheduler and runner look for work, in real milliseconds (default 1000). */
  readonly tickMs?: number;
  readonly log?: PlaneLog;
  /** Alert when a GRS vault's secondary has been behind longer than this (default an hour). */
  readonly replicationLagAlertSeconds?: number;
  /** Called with each job that reached a final state (metrics). */
  readonly onJobFinished?: (job: JobRecord) => void;
}

/**
 * The control plane of one host: catalog, scheduler, job runner, notifications, and the
 * services the API and CLI call. `open` prepares it, `start` begins running jobs, `stop`
 * interrupts running jobs (they are retried on the next start) and closes the catalog.
 */
export class ControlPlane {
  readonly vaults: VaultService;
  readonly policies: PolicyService;
  readonly items: ItemService;
  /** Browsing inside machine points, and their disks exported over NBD. */
  readonly machines: MachineService;
  /** Named snapshots of single disks. */
  readonly diskSnapshots: DiskSnapshotService;
  readonly jobs: JobService;
  readonly tokens: TokenService;
  readonly notifications: NotificationService;
  readonly audit: AuditLog;
  /** The vaults' objects for agents (docs/agents.md). */
  readonly objects: VaultObjects;
  readonly runner: JobRunner;
  readonly scheduler: Scheduler;
  /** Where the admin token was written on this start, if it was created now. */
  adminTokenCreated: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private again = false;

  private constructor(
    readonly catalog: Catalog,
    readonly options: ControlPlaneOptions,
  ) {
    const { clock, dataDir } = options;
    const log = options.log ?? (() => undefined);
    const access = new VaultAccess(dataDir);
    const jobRetries = options.jobRetries ?? 3;
    const jobDeps: JobDeps = { catalog, clock, access, jobRetries };
    this.notifications = new NotificationService(catalog, clock);
    this.runner = new JobRunner({
      catalog,
      clock,
      handlers: {
        backup: backupJobHandler(jobDeps),
        restore: restoreJobHandler(jobDeps),
        retention: retentionJobHandler(jobDeps),
        verify: verifyJobHandler(jobDeps),
        replicate: replicateJobHandler(jobDeps),
      },
      maxConcurrent: options.maxConcurrentJobs ?? 2,
      retry: options.retry ?? DEFAULT_RETRY,
      log,
      onFinished: (job) => {
        options.onJobFinished?.(job);
        void this.notifications.jobFinished(job);
        // A finished job may free a slot or end a backup the scheduler skipped.
        this.kick();
      },
    });
    this.scheduler = new Scheduler({ catalog, clock, backupRetries: jobRetries, log });
    const deps: ServiceDeps = {
      catalog,
      clock,
      dataDir,
      access,
      runner: this.runner,
      jobRetries,
      kick: () => this.kick(),
    };
    this.vaults = new VaultService(deps);
    this.policies = new PolicyService(deps);
    this.items = new ItemService(deps);
    this.machines = new MachineService(deps);
    this.diskSnapshots = new DiskSnapshotService(deps);
    this.jobs = new JobService(deps);
    this.tokens = new TokenService(catalog);
    this.audit = new AuditLog(catalog, clock);
    // An agent's points join the catalog (and so the server's retention) as they arrive.
    this.objects = new VaultObjects(catalog, this.audit, async (vault, id) => {
      try {
        const outcome = await recordAgentPoint(jobDeps, vault, id);
        if (outcome.recorded)
          log('info', 'agent point recorded', { vault: vault.name, ...outcome });
        else
          log('warn', 'point added through the server not recorded', {
            vault: vault.name,
            point: id,
            reason: outcome.reason,
          });
      } catch (error) {
        log('error', 'recording a point added through the server failed', {
          vault: vault.name,
          point: id,
          error: String(error),
        });
      }
    });
  }

  /** Creates the data directory and catalog if needed, and the admin token on first start. */
  static async open(options: ControlPlaneOptions): Promise<ControlPlane> {
    await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
    const catalog = await Catalog.open(
      { kind: 'sqlite', path: join(options.dataDir, 'catalog.sqlite') },
      options.clock,
    );
    const plane = new ControlPlane(catalog, options);
    plane.adminTokenCreated = await plane.tokens.ensureAdminToken(options.dataDir);
    await plane.notifications.load();
    return plane;
  }

  /** Retries what a stopped server left running, then looks for work every tick. */
  async start(): Promise<void> {
    const interrupted = await this.runner.recoverInterrupted();
    if (interrupted > 0)
      this.options.log?.('warn', 'jobs interrupted by the last stop will be retried', {
        interrupted,
      });
    this.timer = setInterval(() => this.kick(), this.options.tickMs ?? 1000);
    this.kick();
  }

  /** Runs the scheduler and the runner once now (coalesced with a tick in progress). */
  kick(): void {
    if (this.ticking) {
      this.again = true;
      return;
    }
    this.ticking = this.tick()
      .catch((error: unknown) =>
        this.options.log?.('error', 'scheduler tick failed', { error: String(error) }),
      )
      .finally(() => {
        this.ticking = undefined;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  /** One pass of scheduler and runner; tests call it after moving the clock. */
  async tick(): Promise<void> {
    await this.scheduler.tick();
    await this.runner.tick();
    await this.alertReplicationLag();
  }

  /**
   * Sends the `vault.replication_lagging` notification once per stretch of lag longer than
   * the threshold (the lag clock starts when new data lands on the primary).
   */
  private async alertReplicationLag(): Promise<void> {
    const now = this.options.clock.now();
    const threshold = (this.options.replicationLagAlertSeconds ?? 3600) * 1000;
    for (const vault of await this.catalog.vaults.list()) {
      const r = vault.replication;
      if (vault.redundancy !== 'grs' || r.paused || r.behindSince == null) continue;
      if (now - r.behindSince <= threshold || (r.lagAlertedAt ?? 0) >= r.behindSince) continue;
      await this.catalog.vaults.setReplication(vault.id, { lagAlertedAt: now });
      this.options.log?.('warn', 'replication lagging', {
        vault: vault.name,
        lagMs: now - r.behindSince,
      });
      void this.notifications.replicationLagging(vault, (now - r.behindSince) / 1000);
    }
  }

  /** Waits until no tick runs and no job runs (tests). */
  async settle(): Promise<void> {
    for (;;) {
      await this.ticking;
      await this.runner.idle();
      await this.tick();
      if (this.runner.active === 0 && this.ticking === undefined) {
        await this.runner.idle();
        return;
      }
    }
  }

  /** The token a bearer secret belongs to. */
  authenticate(secret: string): Promise<TokenRecord | undefined> {
    return this.tokens.authenticate(secret);
  }

  /** Stops ticking, interrupts running jobs (retried on next start), closes the catalog. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.ticking;
    await this.runner.shutdown();
    await this.machines.close();
    await this.objects.close();
    await this.catalog.close();
  }
}
