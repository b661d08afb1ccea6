import { Gauge, Histogram, Registry } from 'prom-client';
import type { ControlPlane, VaultView } from '../app/index.js';
import type { JobRecord } from '../catalog/index.js';

/**
 * The control plane's Prometheus metrics. Gauges read the catalog when scraped (so they are
 * never stale and cost nothing between scrapes); the job-duration histogram is fed as jobs end.
 */
export class ControlPlaneMetrics {
  readonly registry = new Registry();
  private readonly durations: Histogram<'type' | 'state'>;
  private plane: ControlPlane | undefined;

  constructor() {
    const self = this;
    this.durations = new Histogram({
      name: 'holdfast_job_duration_seconds',
      help: 'Duration of finished jobs, by type and final state.',
      labelNames: ['type', 'state'],
      buckets: [1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600],
      registers: [this.registry],
    });
    new Gauge({
      name: 'holdfast_jobs',
      help: 'Jobs in the catalog, by type and state.',
      labelNames: ['type', 'state'],
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const row of (await self.plane?.catalog.jobs.countByState()) ?? [])
          this.set({ type: row.type, state: row.state }, row.count);
      },
    });
    new Gauge({
      name: 'holdfast_item_last_success_age_seconds',
      help: 'Seconds since the last successful backup of each protected item.',
      labelNames: ['item'],
      registers: [this.registry],
      async collect() {
        this.reset();
        const plane = self.plane;
        if (!plane) return;
        const now = plane.options.clock.now();
        for (const item of await plane.catalog.items.list())
          if (item.state === 'protected' && item.lastSuccessAt !== null)
            this.set({ item: item.name }, (now - item.lastSuccessAt) / 1000);
      },
    });
    const gauges: Array<[string, string, (v: VaultView) => number | undefined]> = [
      [
        'holdfast_vault_protected_bytes',
        'Logical bytes of the newest point of each item, per vault.',
        (v) => v.usage.protectedBytes,
      ],
      [
        'holdfast_vault_stored_bytes',
        'Bytes of pack files stored in each vault.',
        (v) => v.usage.storedBytes,
      ],
      ['holdfast_vault_points', 'Recovery points held in each vault.', (v) => v.usage.points],
      [
        'holdfast_vault_replication_lag_seconds',
        'How long the secondary of each GRS vault has been behind its primary (0 when caught up).',
        (v) => v.replication?.lagSeconds,
      ],
      [
        'holdfast_vault_replication_bytes_behind',
        'Bytes of each GRS vault not yet on its secondary, as last measured.',
        (v) => v.replication?.bytesBehind,
      ],
    ];
    for (const [name, help, pick] of gauges) this.vaultGauge(name, help, pick);
  }

  /** A gauge per vault; vaults for which `pick` has no value (lrs, for replication) are left out. */
  private vaultGauge(name: string, help: string, pick: (v: VaultView) => number | undefined): void {
    const self = this;
    new Gauge({
      name,
      help,
      labelNames: ['vault'],
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const vault of (await self.plane?.vaults.list()) ?? []) {
          const value = pick(vault);
          if (value !== undefined) this.set({ vault: vault.name }, value);
        }
      },
    });
  }

  /** Starts reading from a control plane. */
  attach(plane: ControlPlane): void {
    this.plane = plane;
  }

  /** Records a finished job's duration. */
  jobFinished(job: JobRecord): void {
    if (job.startedAt === null || job.endedAt === null) return;
    this.durations.observe(
      { type: job.type, state: job.state },
      (job.endedAt - job.startedAt) / 1000,
    );
  }
}
