import { HoldfastError } from '../core/index.js';
import type { JobNotice, NotifyLog, Sleep } from './job-notice.js';
import type { EventKind } from './notification-settings.js';

// Helpers shared by the webhook and e-mail deliverers; not part of the jobs layer's public face.

/** What delivering to any channel needs besides the channel's settings. */
export interface DeliveryContext {
  readonly now: () => number;
  /** Per attempt. */
  readonly timeoutMs: number;
  /** Further attempts after the first, for failures that may pass. */
  readonly retries: number;
  /** The wait before the first retry; it doubles on each further one. */
  readonly backoffMs: number;
  readonly sleep: Sleep;
  readonly log: NotifyLog;
  readonly signal?: AbortSignal;
}

/** The longest wait between two attempts, however many retries are configured. */
export const MAX_BACKOFF_MS = 30_000;

/** The wait before retry number `retry` (1-based): exponential, capped at {@link MAX_BACKOFF_MS}. */
export function backoffDelay(backoffMs: number, retry: number): number {
  return Math.min(MAX_BACKOFF_MS, backoffMs * 2 ** (retry - 1));
}

const OUTCOMES: Readonly<Record<EventKind, string>> = {
  'job.failed': 'failed',
  'vault.replication_lagging': 'lagging behind its primary',
  'job.completed_with_warnings': 'completed with warnings',
  'job.completed': 'completed',
  test: 'test notification',
};

/**
 * A one-line description of the notice for subjects and log lines, e.g.
 * `backup of item 'docs' failed`. Control characters are replaced so it is safe in a header.
 */
export function describeNotice(notice: JobNotice): string {
  if (notice.kind === 'test') return 'test notification';
  const target =
    notice.itemName !== undefined
      ? `of item '${notice.itemName}'`
      : notice.vaultName !== undefined
        ? `of vault '${notice.vaultName}'`
        : notice.jobId;
  return oneLine(`${notice.jobType} ${target} ${OUTCOMES[notice.kind]}`);
}

/** `text` with every control character (CR, LF, ...) replaced by a space. */
export function oneLine(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f]+/g, ' ');
}

/**
 * `text` with every occurrence of each secret (and of its base64 form, as SMTP AUTH sends it)
 * replaced by `***`. Applied to every text that came from outside (server replies, library
 * errors) before it goes into a result or a log line.
 */
export function scrubSecrets(text: string, secrets: readonly (string | undefined)[]): string {
  let scrubbed = text;
  for (const secret of secrets) {
    if (secret === undefined || secret === '') continue;
    for (const form of [secret, Buffer.from(secret).toString('base64')]) {
      scrubbed = scrubbed.split(form).join('***');
    }
  }
  return scrubbed;
}

/** The error of a delivery that the caller's signal ended. */
export function cancelledError(signal: AbortSignal | undefined): HoldfastError {
  return new HoldfastError('CANCELLED', 'The notification was cancelled.', {
    cause: signal?.reason,
  });
}

/**
 * Logs a failed delivery attempt and waits the backoff before the next one; false when the
 * wait was cancelled (the caller then gives up with a cancelled result).
 */
export async function waitToRetry(
  context: DeliveryContext,
  channel: string,
  attempts: number,
  fields: Record<string, unknown>,
  error: HoldfastError,
): Promise<boolean> {
  const waitMs = backoffDelay(context.backoffMs, attempts);
  context.log('warn', `${channel} attempt failed, will retry`, {
    ...fields,
    attempt: attempts,
    waitMs,
    error: error.message,
  });
  try {
    await context.sleep(waitMs, context.signal);
    return true;
  } catch {
    return false;
  }
}
