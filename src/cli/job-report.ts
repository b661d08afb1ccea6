import type { JobView } from '../app/index.js';
import { formatBytes, formatDuration } from '../core/index.js';
import { details, localTime } from './format.js';

/** Per-item errors shown by a human summary; the rest are counted (`--json` gives all kept). */
const ERRORS_SHOWN = 20;

/** What a job is about, e.g. `backup of item web` or `restore of item web`. */
export function jobTitle(job: JobView): string {
  const of =
    job.item !== null ? ` of item ${job.item}` : job.vault !== null ? ` of vault ${job.vault}` : '';
  return `${job.type}${of}`;
}

/** `completed_with_warnings` → `completed with warnings`. */
export function stateText(state: string): string {
  return state.replace(/_/g, ' ');
}

/** How long a job ran (start to end, or to now while it runs), or undefined before it started. */
export function jobDuration(job: JobView, now = Date.now()): number | undefined {
  if (job.startedAt === null) return undefined;
  const end = job.endedAt !== null ? Date.parse(job.endedAt) : now;
  return Math.max(0, (end - Date.parse(job.startedAt)) / 1000);
}

/** A result value for people: sizes for fields that count bytes, JSON for structures. */
function resultValue(key: string, value: unknown): string {
  if (typeof value === 'number' && /bytes$/i.test(key)) return formatBytes(value);
  if (typeof value === 'number' && /ms$/i.test(key)) return formatDuration(value / 1000);
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
    return String(value);
  }
  return JSON.stringify(value);
}

/** Lines for each phase: its state, and the counters it reached. */
function phaseLines(job: JobView): string[] {
  return job.phases.map((phase) => {
    const p = phase.progress;
    const counters = p
      ? `, ${p.items}${p.totalItems !== undefined ? `/${p.totalItems}` : ''} items, ${formatBytes(p.bytes)}${p.totalBytes !== undefined ? `/${formatBytes(p.totalBytes)}` : ''}`
      : '';
    return `  phase ${phase.name}: ${stateText(phase.state)}${counters}`;
  });
}

/** The last attempt's error, when the job failed or is waiting to retry. */
function attemptLines(job: JobView): string[] {
  const last = job.attempts[job.attempts.length - 1];
  if (last === undefined) return [];
  const lines = [`  last attempt ${last.outcome}: ${last.error.message} [${last.error.code}]`];
  if (job.state === 'waiting_retry') {
    lines.push(`  retry ${job.retryCount}/${job.maxRetries} runs after ${localTime(job.runAfter)}`);
  }
  return lines;
}

/** Per-item errors (a sample; `errorCount` is exact). */
function errorLines(job: JobView): string[] {
  if (job.errorCount === 0) return [];
  const lines = [`  ${job.errorCount} entries failed:`];
  for (const e of job.errors.slice(0, ERRORS_SHOWN)) lines.push(`    ${e.path}: ${e.message}`);
  const more = job.errorCount - Math.min(job.errors.length, ERRORS_SHOWN);
  if (more > 0) lines.push(`    … and ${more} more (holdfast --json job show ${job.id})`);
  return lines;
}

/** The summary printed when a job has ended (or when waiting for it stopped). */
export function jobSummary(job: JobView): string[] {
  const duration = jobDuration(job);
  const took = duration !== undefined ? ` in ${formatDuration(duration)}` : '';
  const lines = [`job ${job.id} (${jobTitle(job)}) ${stateText(job.state)}${took}`];
  lines.push(...phaseLines(job));
  if (job.result !== null) {
    for (const [key, value] of Object.entries(job.result)) {
      lines.push(`  ${key}: ${resultValue(key, value)}`);
    }
  }
  if (job.state === 'failed' || job.state === 'waiting_retry') lines.push(...attemptLines(job));
  lines.push(...errorLines(job));
  return lines;
}

/** Everything `job show` prints about a job. */
export function jobDetails(job: JobView): string[] {
  const duration = jobDuration(job);
  const lines = details([
    ['job', job.id],
    ['type', job.type],
    [
      'state',
      stateText(job.state) +
        (job.cancelRequested && job.endedAt === null ? ' (cancel requested)' : ''),
    ],
    ['trigger', job.trigger],
    ['item', job.item ?? undefined],
    ['vault', job.vault ?? undefined],
    ['created', localTime(job.createdAt)],
    ['started', job.startedAt !== null ? localTime(job.startedAt) : undefined],
    ['ended', job.endedAt !== null ? localTime(job.endedAt) : undefined],
    ['duration', duration !== undefined ? formatDuration(duration) : undefined],
    ['retries', `${job.retryCount}/${job.maxRetries}`],
    [
      'run after',
      job.state === 'queued' || job.state === 'waiting_retry' ? localTime(job.runAfter) : undefined,
    ],
    ['params', Object.keys(job.params).length > 0 ? JSON.stringify(job.params) : undefined],
  ]);
  lines.push(...phaseLines(job));
  if (job.result !== null) {
    for (const [key, value] of Object.entries(job.result)) {
      lines.push(`  ${key}: ${resultValue(key, value)}`);
    }
  }
  for (const a of job.attempts) {
    lines.push(
      `  attempt ${localTime(a.startedAt)} – ${localTime(a.endedAt)} ${a.outcome}: ${a.error.message} [${a.error.code}]`,
    );
  }
  lines.push(...errorLines(job));
  return lines;
}
