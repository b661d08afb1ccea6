import type { Catalog, JobItemError, JobPhase, JobProgress, JobRecord } from '../catalog/index.js';
import type { Clock } from '../core/index.js';

/** How a handler's run ended when it did not throw. */
export interface JobOutcome {
  /** Per-item errors recorded through {@link JobContext.itemError} make it "with warnings". */
  readonly result: Record<string, unknown>;
}

/** What a job handler sees of its job. */
export interface JobContext {
  readonly job: JobRecord;
  /** Aborted on cancel or server shutdown: stop writing and throw. */
  readonly signal: AbortSignal;
  /** The checkpoint a phase saved in an earlier attempt, if it finished there. */
  checkpoint(phase: string): Record<string, unknown> | undefined;
  /** Marks a phase as started. */
  startPhase(phase: string): Promise<void>;
  /** Marks a phase as done, saving what a retry needs to skip it. */
  finishPhase(phase: string, checkpoint?: Record<string, unknown>): Promise<void>;
  /** Marks a phase as not needed. */
  skipPhase(phase: string): Promise<void>;
  /** Reports progress of the running phase; written to the catalog at most twice a second. */
  progress(phase: string, progress: JobProgress): void;
  /** Records one failed entry; the job still completes, "with warnings". */
  itemError(error: JobItemError): void;
}

// Per-item errors kept in the catalog: the count is exact, the list is a sample.
const MAX_STORED_ERRORS = 1000;
const PROGRESS_WRITE_MS = 500;

/** The {@link JobContext} of one attempt; keeps phases and errors and writes them back. */
export class AttemptContext implements JobContext {
  private phases: JobPhase[];
  readonly errors: JobItemError[] = [];
  errorCount = 0;
  private lastProgressWrite = 0;
  private pendingWrite: Promise<void> = Promise.resolve();

  constructor(
    readonly job: JobRecord,
    readonly signal: AbortSignal,
    private readonly catalog: Catalog,
    private readonly clock: Clock,
  ) {
    this.phases = job.phases.map((p) => ({ ...p }));
  }

  checkpoint(phase: string): Record<string, unknown> | undefined {
    const found = this.phases.find((p) => p.name === phase);
    return found?.state === 'done' ? (found.checkpoint ?? {}) : undefined;
  }

  async startPhase(phase: string): Promise<void> {
    this.setPhase(phase, { state: 'running', startedAt: this.clock.now() });
    await this.write();
  }

  async finishPhase(phase: string, checkpoint?: Record<string, unknown>): Promise<void> {
    this.setPhase(phase, {
      state: 'done',
      endedAt: this.clock.now(),
      ...(checkpoint ? { checkpoint } : {}),
    });
    await this.write();
  }

  async skipPhase(phase: string): Promise<void> {
    this.setPhase(phase, { state: 'skipped', endedAt: this.clock.now() });
    await this.write();
  }

  progress(phase: string, progress: JobProgress): void {
    this.setPhase(phase, { progress });
    const now = Date.now();
    // Real time, not the injected clock: this only limits catalog writes.
    if (now - this.lastProgressWrite < PROGRESS_WRITE_MS) return;
    this.lastProgressWrite = now;
    void this.write();
  }

  itemError(error: JobItemError): void {
    this.errorCount += 1;
    if (this.errors.length < MAX_STORED_ERRORS) this.errors.push(error);
  }

  /** Marks the running phase failed (when the attempt ends in an error). */
  failRunningPhase(): void {
    for (const phase of this.phases)
      if (phase.state === 'running')
        this.setPhase(phase.name, { state: 'failed', endedAt: this.clock.now() });
  }

  /** The phases as they stand. */
  get currentPhases(): readonly JobPhase[] {
    return this.phases;
  }

  /** Waits for queued catalog writes. */
  async flush(): Promise<void> {
    await this.pendingWrite;
  }

  private setPhase(name: string, change: Partial<JobPhase>): void {
    const index = this.phases.findIndex((p) => p.name === name);
    const base: JobPhase = index >= 0 ? this.phases[index]! : { name, state: 'pending' };
    const next: JobPhase = { ...base, ...change };
    if (index >= 0) this.phases[index] = next;
    else this.phases.push(next);
  }

  // Writes are chained so an older snapshot of the phases never lands after a newer one.
  private write(): Promise<void> {
    const phases = this.phases.map((p) => ({ ...p }));
    const errors = [...this.errors];
    this.pendingWrite = this.pendingWrite
      .then(() => this.catalog.jobs.update(this.job.id, { phases, errors }))
      .catch(() => undefined);
    return this.pendingWrite;
  }
}
