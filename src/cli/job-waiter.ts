import { setTimeout as sleep } from 'node:timers/promises';
import type { JobView } from '../app/index.js';
import type { JobState } from '../catalog/index.js';
import { HoldfastError, isHoldfastError } from '../core/index.js';
import type { ApiClient } from './api-client.js';
import { EXIT, type CommandContext } from './context.js';
import { jobDuration, jobSummary, jobTitle, stateText } from './job-report.js';
import { ProgressReporter, type ProgressSample } from './progress.js';

/** How often a waiting command asks the server for the job. */
const POLL_MS = 500;
/** How long a waiting command keeps asking while the server does not answer (a restart). */
const OUTAGE_MS = 60_000;

/** The exit code of each state a job ends in (docs/cli.md, "Exit codes"). */
export const JOB_EXIT = {
  completed: EXIT.ok,
  completed_with_warnings: EXIT.warnings,
  failed: EXIT.error,
  cancelled: EXIT.interrupted,
} as const satisfies Record<Exclude<JobState, 'queued' | 'running' | 'waiting_retry'>, number>;

/** True when a job in `state` has ended and will not change again. */
export function isFinalState(state: string): state is keyof typeof JOB_EXIT {
  return Object.hasOwn(JOB_EXIT, state);
}

/**
 * After `backup-now` or `restore` started a job: without `wait`, prints the job (or its JSON)
 * and returns 0; with `wait`, follows it to its end like {@link watchJob}.
 */
export async function followJob(
  ctx: CommandContext,
  api: ApiClient,
  job: JobView,
  wait: boolean,
): Promise<number> {
  if (wait) return watchJob(ctx, api, job);
  if (ctx.options.json) ctx.json(job);
  else {
    ctx.say(`job ${job.id} (${jobTitle(job)}) ${stateText(job.state)}`);
    ctx.say(`  follow it with 'holdfast job watch ${job.id}'`);
  }
  return EXIT.ok;
}

/**
 * Polls the job until it ends, showing progress, then prints its summary (or the final JobView
 * with --json) and returns the exit code of its final state. Ctrl-C stops waiting (exit 130);
 * the job goes on.
 */
export async function watchJob(ctx: CommandContext, api: ApiClient, job: JobView): Promise<number> {
  const final = await waitForJob(ctx, api, job);
  if (ctx.options.json) ctx.json(final);
  else for (const line of jobSummary(final)) ctx.say(line);
  const code = JOB_EXIT[final.state as keyof typeof JOB_EXIT];
  if (final.state === 'failed') {
    const last = final.attempts[final.attempts.length - 1];
    const reason = last ? `${last.error.message} [${last.error.code}]` : 'no reason was given';
    process.stderr.write(`error: job ${final.id} failed: ${reason}\n`);
  }
  return code;
}

/** Polls `GET /api/jobs/:id` until the job is in a final state; returns that view. */
async function waitForJob(ctx: CommandContext, api: ApiClient, first: JobView): Promise<JobView> {
  let job = first;
  let shown = '';
  let failingSince: number | undefined;
  const reporter = new ProgressReporter(ctx.progress, () => progressSample(job)).start();
  try {
    for (;;) {
      shown = noteChange(ctx, job, shown);
      if (isFinalState(job.state)) return job;
      await sleep(POLL_MS, undefined, { signal: ctx.signal });
      try {
        job = await api.getJob(job.id);
        failingSince = undefined;
      } catch (error) {
        const outage =
          isHoldfastError(error, 'SERVER_UNREACHABLE') ||
          isHoldfastError(error, 'SERVER_SHUTTING_DOWN');
        if (!outage || ctx.signal.aborted) throw error;
        if (failingSince === undefined) {
          note(ctx, `the server does not answer; still trying for ${OUTAGE_MS / 1000} s`);
        }
        failingSince ??= Date.now();
        if (Date.now() - failingSince > OUTAGE_MS) throw error;
      }
    }
  } catch (error) {
    if (ctx.signal.aborted) {
      throw new HoldfastError(
        'CANCELLED',
        `Stopped waiting. Job ${job.id} goes on on the server: follow it with 'holdfast job watch ${job.id}', or stop it with 'holdfast job cancel ${job.id}'.`,
      );
    }
    throw error;
  } finally {
    reporter.stop();
  }
}

/** The phase that is running, else the last one that reported progress. */
function currentPhase(job: JobView): JobView['phases'][number] | undefined {
  return (
    job.phases.find((p) => p.state === 'running') ??
    [...job.phases].reverse().find((p) => p.progress !== null)
  );
}

/** The job's counters for the progress line or JSON progress lines. */
function progressSample(job: JobView): ProgressSample {
  const phase = job.state === 'running' ? currentPhase(job) : undefined;
  if (phase === undefined) {
    const since = Date.parse(
      job.state === 'queued' ? job.createdAt : (job.endedAt ?? job.createdAt),
    );
    return {
      phase: stateText(job.state),
      items: 0,
      bytes: 0,
      errors: job.errorCount,
      elapsedSeconds: jobDuration(job) ?? Math.max(0, (Date.now() - since) / 1000),
    };
  }
  const p = phase.progress;
  return {
    phase: `${job.type} ${phase.name}`,
    items: p?.items ?? 0,
    totalItems: p?.totalItems,
    bytes: p?.bytes ?? 0,
    totalBytes: p?.totalBytes,
    errors: job.errorCount,
    elapsedSeconds:
      phase.startedAt !== null
        ? Math.max(0, (Date.now() - Date.parse(phase.startedAt)) / 1000)
        : undefined,
    bytesPerSecond: p?.bytesPerSecond,
    etaSeconds: p?.etaSeconds,
  };
}

/** Tells of a new state or phase once: a line on stderr, or a JSON line with --json-progress. */
function noteChange(ctx: CommandContext, job: JobView, shown: string): string {
  const phase = job.state === 'running' ? currentPhase(job)?.name : undefined;
  const key = `${job.state}/${phase ?? ''}/${job.retryCount}`;
  if (key === shown) return shown;
  if (ctx.progress === 'json') {
    process.stderr.write(
      JSON.stringify({ type: 'state', job: job.id, state: job.state, phase: phase ?? null }) + '\n',
    );
  } else if (!isFinalState(job.state)) {
    const where = phase !== undefined ? `, phase ${phase}` : '';
    const retry =
      job.state === 'waiting_retry' ? ` (retry ${job.retryCount}/${job.maxRetries})` : '';
    note(ctx, `job ${job.id} (${jobTitle(job)}): ${stateText(job.state)}${where}${retry}`);
  }
  return key;
}

/** A line on stderr that does not break a redrawn progress line; --quiet hides it. */
function note(ctx: CommandContext, line: string): void {
  if (ctx.options.quiet) return;
  if (ctx.progress === 'json') {
    process.stderr.write(JSON.stringify({ type: 'note', message: line }) + '\n');
    return;
  }
  process.stderr.write(`${ctx.progress === 'tty' ? '\r\x1b[2K' : ''}${line}\n`);
}
