import type { Catalog, JobAttempt, JobId, JobRecord, JobType } from '../catalog/index.js';
import { describeError, HoldfastError, isHoldfastError, type Clock } from '../core/index.js';
import { AttemptContext, type JobContext, type JobOutcome } from './job-context.js';

/** Runs one job type. Throws to fail the attempt; per-item errors go to the context. */
export type JobHandler = (context: JobContext) => Promise<JobOutcome>;

/** How failed attempts are retried: exponential backoff from `baseDelayMs`, capped. */
export interface RetrySettings {
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

/** Defaults: 1 min, 2 min, 4 min… up to an hour. */
export const DEFAULT_RETRY: RetrySettings = { baseDelayMs: 60_000, maxDelayMs: 3_600_000 };

/**
 * Failures another attempt cannot fix: retrying them only delays the alarm. Everything else
 * (storage hiccups, a full disk, a lock held too long) is retried.
 */
export const PERMANENT_FAILURES: ReadonlySet<string> = new Set([
  'USAGE_INVALID',
  'POLICY_INVALID',
  'STATE_CONFLICT',
  'RESOURCE_NOT_FOUND',
  'POINT_NOT_FOUND',
  'VAULT_INTEGRITY',
  'VAULT_WRONG_KEY',
  'RESTORE_TARGET_INVALID',
  'RESTORE_UNSAFE_ENTRY',
]);

/** Options of {@link JobRunner}. */
export interface JobRunnerOptions {
  readonly catalog: Catalog;
  readonly clock: Clock;
  readonly handlers: Partial<Record<JobType, JobHandler>>;
  /** Jobs run at once on this host. */
  readonly maxConcurrent: number;
  readonly retry: RetrySettings;
  /** Called once per job that reaches a final state (notifications, metrics). */
  readonly onFinished?: (job: JobRecord) => void;
  readonly log?: (level: 'info' | 'warn' | 'error', message: string, fields: object) => void;
}

// Why a running attempt was aborted: the user cancelled it, or the server is stopping.
type AbortReason = 'cancel' | 'shutdown';

interface Running {
  readonly controller: AbortController;
  readonly done: Promise<void>;
  reason?: AbortReason;
}

/**
 * Takes ready jobs from the catalog and runs them with bounded concurrency, moving each
 * through the states of docs/jobs.md. Claiming is a conditional update, so two runners never
 * run one job; a job left `running` by a stopped server is found at start and retried.
 */
export class JobRunner {
  private readonly running = new Map<JobId, Running>();
  private stopping = false;

  constructor(private readonly options: JobRunnerOptions) {}

  /** At start: jobs a dead server left running were interrupted; they are retried. */
  async recoverInterrupted(): Promise<number> {
    const orphans = await this.options.catalog.jobs.running();
    for (const job of orphans) {
      const error = new HoldfastError(
        'CANCELLED',
        'The server stopped while this job ran; it is retried.',
      );
      await this.endAttempt(job, job.phases, 'interrupted', error);
    }
    return orphans.length;
  }

  /** Starts ready jobs up to the limit and forwards cancel requests to running ones. */
  async tick(): Promise<void> {
    if (this.stopping) return;
    await this.forwardCancels();
    const free = this.options.maxConcurrent - this.running.size;
    if (free <= 0) return;
    const ready = await this.options.catalog.jobs.ready(this.options.clock.now(), free * 4);
    for (const candidate of ready) {
      if (this.running.size >= this.options.maxConcurrent) break;
      if (candidate.cancelRequested) {
        await this.finish(candidate, candidate.phases, 'cancelled', { cancelled: true }, undefined);
        continue;
      }
      const job = await this.options.catalog.jobs.claim(candidate);
      if (job !== undefined) this.start(job);
    }
  }

  /**
   * Cancels a job: one that waits ends at once, a running one is aborted and ends `cancelled`
   * when its handler stops. Throws JOB_NOT_CANCELLABLE when it has already ended.
   */
  async cancel(id: JobId): Promise<void> {
    const accepted = await this.options.catalog.jobs.requestCancel(id);
    if (!accepted) throw new HoldfastError('JOB_NOT_CANCELLABLE', `Job ${id} has already ended.`);
    const running = this.running.get(id);
    if (running) {
      running.reason = 'cancel';
      running.controller.abort(new Error('cancelled'));
      return;
    }
    const job = await this.options.catalog.jobs.byId(id);
    if (job && (job.state === 'queued' || job.state === 'waiting_retry'))
      await this.finish(job, job.phases, 'cancelled', { cancelled: true }, undefined);
  }

  /** Number of jobs running now. */
  get active(): number {
    return this.running.size;
  }

  /** Resolves when no job runs (tests). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running.values()].map((r) => r.done));
  }

  /**
   * Stops: running jobs are aborted and recorded as interrupted, to be retried after the next
   * start. Nothing new starts.
   */
  async shutdown(): Promise<void> {
    this.stopping = true;
    for (const running of this.running.values()) {
      running.reason ??= 'shutdown';
      running.controller.abort(new Error('server stopping'));
    }
    await this.idle();
  }

  private start(job: JobRecord): void {
    const controller = new AbortController();
    const entry: Running = { controller, done: Promise.resolve() };
    const done = this.runAttempt(job, entry).finally(() => this.running.delete(job.id));
    this.running.set(job.id, Object.assign(entry, { done }));
  }

  private async runAttempt(job: JobRecord, entry: Running): Promise<void> {
    const { catalog, clock } = this.options;
    const context = new AttemptContext(job, entry.controller.signal, catalog, clock);
    const handler = this.options.handlers[job.type];
    try {
      if (handler === undefined)
        throw new HoldfastError('INTERNAL', `No handler for ${job.type} jobs on this server.`);
      this.options.log?.('info', 'job started', {
        job: job.id,
        type: job.type,
        retry: job.retryCount,
      });
      const outcome = await handler(context);
      await context.flush();
      const state = context.errorCount > 0 ? 'completed_with_warnings' : 'completed';
      await this.finish(
        job,
        context.currentPhases,
        state,
        { ...outcome.result, errorCount: context.errorCount },
        context,
      );
    } catch (error) {
      context.failRunningPhase();
      await context.flush();
      if (entry.reason === 'cancel') {
        await this.finish(job, context.currentPhases, 'cancelled', { cancelled: true }, context);
      } else {
        const outcome = entry.reason === 'shutdown' ? 'interrupted' : 'failed';
        await this.endAttempt(job, context.currentPhases, outcome, error, context);
      }
    }
  }

  private async endAttempt(
    job: JobRecord,
    phases: JobRecord['phases'],
    outcome: JobAttempt['outcome'],
    error: unknown,
    context?: AttemptContext,
  ): Promise<void> {
    const now = this.options.clock.now();
    const attempt: JobAttempt = {
      startedAt: job.startedAt ?? now,
      endedAt: now,
      outcome,
      error: {
        code: isHoldfastError(error) ? error.code : 'INTERNAL',
        message: describeError(error),
      },
    };
    const attempts = [...job.attempts, attempt];
    // A retry resumes from the phases' checkpoints; phases that did not finish start over.
    const resumable = phases.map((p) =>
      p.state === 'done' || p.state === 'skipped' ? p : { name: p.name, state: 'pending' as const },
    );
    // A server restart is not the job's fault: an interrupted attempt is always retried.
    const retryable = !PERMANENT_FAILURES.has(attempt.error.code);
    if (outcome === 'interrupted' || (retryable && job.retryCount < job.maxRetries)) {
      const delay = Math.min(
        this.options.retry.maxDelayMs,
        this.options.retry.baseDelayMs * 2 ** job.retryCount,
      );
      // An interrupted job is retried as soon as the server runs again.
      const runAfter = outcome === 'interrupted' ? now : now + delay;
      await this.options.catalog.jobs.update(job.id, {
        state: 'waiting_retry',
        phases: resumable,
        attempts,
        retryCount: job.retryCount + 1,
        runAfter,
        startedAt: null,
        ...(context ? { errors: context.errors } : {}),
      });
      this.options.log?.('warn', `job ${outcome}; retry scheduled`, {
        job: job.id,
        error: attempt.error,
        runAfter,
      });
      return;
    }
    await this.options.catalog.jobs.update(job.id, { attempts });
    await this.finish(job, phases, 'failed', { error: attempt.error }, context);
  }

  private async finish(
    job: JobRecord,
    phases: JobRecord['phases'],
    state: 'completed' | 'completed_with_warnings' | 'failed' | 'cancelled',
    result: Record<string, unknown>,
    context: AttemptContext | undefined,
  ): Promise<void> {
    await this.options.catalog.jobs.update(job.id, {
      state,
      phases,
      result,
      endedAt: this.options.clock.now(),
      ...(context ? { errors: context.errors } : {}),
    });
    this.options.log?.(state === 'failed' ? 'error' : 'info', `job ${state}`, { job: job.id });
    const final = await this.options.catalog.jobs.byId(job.id);
    if (final) this.options.onFinished?.(final);
  }

  private async forwardCancels(): Promise<void> {
    for (const [id, running] of this.running) {
      if (running.reason !== undefined) continue;
      const job = await this.options.catalog.jobs.byId(id);
      if (job?.cancelRequested) {
        running.reason = 'cancel';
        running.controller.abort(new Error('cancelled'));
      }
    }
  }
}
