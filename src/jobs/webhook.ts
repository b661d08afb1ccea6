import { createHmac, timingSafeEqual } from 'node:crypto';
import { HoldfastError, describeError } from '../core/index.js';
import { webhookChannelId, type DeliveryResult, type JobNotice } from './job-notice.js';
import type { EventKind, WebhookSettings } from './notification-settings.js';
import {
  cancelledError,
  describeNotice,
  oneLine,
  scrubSecrets,
  type DeliveryContext,
  waitToRetry,
} from './notify-delivery.js';

/** How far a signed timestamp may be from the receiver's clock, by default: five minutes. */
export const DEFAULT_SIGNATURE_TOLERANCE_MS = 300_000;

/**
 * The job part of a webhook payload; times are ISO 8601 strings. Fields that are `undefined` are
 * absent from the JSON (never `null`), so receivers see one type per field.
 */
export interface WebhookJob {
  readonly id: string;
  readonly type: string;
  readonly state: string;
  readonly itemName?: string | undefined;
  readonly vaultName?: string | undefined;
  readonly startedAt?: string | undefined;
  readonly endedAt?: string | undefined;
  readonly message?: string | undefined;
  readonly errorCount?: number | undefined;
  readonly bytes?: number | undefined;
  readonly consoleUrl?: string | undefined;
}

/** The JSON body of a webhook request. */
export interface WebhookPayload {
  readonly event: EventKind;
  /** When the notification was first sent (ISO 8601); retries keep it. */
  readonly sentAt: string;
  readonly job: WebhookJob;
}

/** The payload for `notice`, sent at `nowMs`. */
export function webhookPayload(notice: JobNotice, nowMs: number): WebhookPayload {
  const iso = (ms: number | undefined) =>
    ms === undefined ? undefined : new Date(ms).toISOString();
  const job: WebhookJob = {
    id: notice.jobId,
    type: notice.jobType,
    state: notice.state,
    itemName: notice.itemName,
    vaultName: notice.vaultName,
    startedAt: iso(notice.startedAt),
    endedAt: iso(notice.endedAt),
    message: notice.message,
    errorCount: notice.errorCount,
    bytes: notice.bytes,
    consoleUrl: notice.consoleUrl,
  };
  return { event: notice.kind, sentAt: new Date(nowMs).toISOString(), job };
}

function hmac(secret: string, timestamp: string, body: string | Uint8Array): Buffer {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest();
}

/**
 * The `x-holdfast-signature` value for a body sent at `timestamp` (seconds since the epoch):
 * `v1=` and the hex HMAC-SHA256, keyed with the secret, of `timestamp + '.' + body`.
 */
export function signWebhookBody(
  secret: string,
  timestamp: string,
  body: string | Uint8Array,
): string {
  return `v1=${hmac(secret, timestamp, body).toString('hex')}`;
}

/** What a receiver passes to {@link verifyWebhookSignature}, mostly straight from the request. */
export interface WebhookSignatureCheck {
  readonly secret: string;
  /** The `x-holdfast-timestamp` header: seconds since the epoch. */
  readonly timestamp: string | number | undefined;
  /** The raw request body, exactly as received: not re-serialized JSON. */
  readonly body: string | Uint8Array;
  /** The `x-holdfast-signature` header. */
  readonly signature: string | undefined;
  /** The receiver's clock, ms since the epoch. */
  readonly nowMs: number;
  /** How far the timestamp may be from `nowMs`; {@link DEFAULT_SIGNATURE_TOLERANCE_MS}. */
  readonly toleranceMs?: number;
}

/**
 * For receivers: true when the request was signed with `secret` and its timestamp is within
 * `toleranceMs` of `nowMs`. The signature header may list several comma-separated `v1=` values
 * (one matching is enough); the comparison is constant-time. Rejecting old timestamps stops a
 * captured request from being replayed later.
 */
export function verifyWebhookSignature(check: WebhookSignatureCheck): boolean {
  const { secret, body, signature, nowMs } = check;
  const toleranceMs = check.toleranceMs ?? DEFAULT_SIGNATURE_TOLERANCE_MS;
  if (secret === '' || signature === undefined || check.timestamp === undefined) return false;
  const timestamp = String(check.timestamp);
  if (!/^\d{1,15}$/.test(timestamp)) return false;
  if (!(Math.abs(nowMs - Number(timestamp) * 1000) <= toleranceMs)) return false;
  const expected = hmac(secret, timestamp, body);
  for (const entry of signature.split(',')) {
    const match = /^v1=([0-9a-f]{64})$/i.exec(entry.trim());
    if (match?.[1] !== undefined && timingSafeEqual(Buffer.from(match[1], 'hex'), expected)) {
      return true;
    }
  }
  return false;
}

/** What a webhook delivery needs besides the shared context. */
export interface WebhookDeliveryContext extends DeliveryContext {
  readonly fetch: typeof fetch;
}

type Attempt =
  { ok: true; status: number } | { ok: false; retryable: boolean; error: HoldfastError };

/**
 * POSTs `notice` to the webhook, signed, with a timeout per attempt; retries network errors,
 * timeouts, 5xx and 429 with exponential backoff. Never throws; redirects are failures.
 */
export async function deliverWebhook(
  webhook: WebhookSettings,
  notice: JobNotice,
  context: WebhookDeliveryContext,
): Promise<DeliveryResult> {
  const channel = webhookChannelId(webhook.name);
  const target = originOf(webhook.url);
  const fields = { channel, target, event: notice.kind, jobId: notice.jobId };
  const failed = (attempts: number, error: HoldfastError): DeliveryResult => {
    context.log('error', 'webhook notification failed', {
      ...fields,
      attempts,
      error: error.message,
    });
    return { channel, kind: 'webhook', ok: false, attempts, error };
  };
  if (target === undefined) {
    return failed(0, notifyFailed(webhook.name, 'its URL is not an http:// or https:// URL'));
  }
  const body = JSON.stringify(webhookPayload(notice, context.now()));
  let attempts = 0;
  for (;;) {
    if (context.signal?.aborted) return failed(attempts, cancelledError(context.signal));
    attempts += 1;
    const attempt = await attemptOnce(webhook, notice.kind, body, context);
    if (attempt.ok) {
      context.log('info', 'webhook notification sent', {
        ...fields,
        attempts,
        status: attempt.status,
        notice: describeNotice(notice),
      });
      return { channel, kind: 'webhook', ok: true, attempts };
    }
    if (!attempt.retryable || attempts > context.retries) return failed(attempts, attempt.error);
    if (!(await waitToRetry(context, 'webhook', attempts, fields, attempt.error)))
      return failed(attempts, cancelledError(context.signal));
  }
}

async function attemptOnce(
  webhook: WebhookSettings,
  event: EventKind,
  body: string,
  context: WebhookDeliveryContext,
): Promise<Attempt> {
  // Signed per attempt: a retry after a long backoff must still be inside the receiver's window.
  const timestamp = String(Math.floor(context.now() / 1000));
  const timeout = AbortSignal.timeout(context.timeoutMs);
  const signal = context.signal ? AbortSignal.any([context.signal, timeout]) : timeout;
  let response: Response;
  try {
    response = await context.fetch(webhook.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'Holdfast-Webhook/1',
        'x-holdfast-event': event,
        'x-holdfast-timestamp': timestamp,
        'x-holdfast-signature': signWebhookBody(webhook.secret, timestamp, body),
      },
      body,
      // A redirect could carry the signed notice to a host the operator never configured.
      redirect: 'manual',
      signal,
    });
  } catch (error) {
    if (context.signal?.aborted) {
      return { ok: false, retryable: false, error: cancelledError(context.signal) };
    }
    const reason = timeout.aborted
      ? `it did not answer within ${context.timeoutMs} ms`
      : `it could not be reached (${scrubSecrets(networkReason(error), [webhook.secret])})`;
    return { ok: false, retryable: true, error: notifyFailed(webhook.name, reason) };
  }
  // Release the connection; the receiver's body is not needed and may be large.
  await response.body?.cancel().catch(() => undefined);
  const { status } = response;
  if (status >= 200 && status < 300) return { ok: true, status };
  if (status >= 300 && status < 400) {
    const reason = `it answered ${status} (a redirect), and redirects are not followed; configure the final URL`;
    return { ok: false, retryable: false, error: notifyFailed(webhook.name, reason) };
  }
  const retryable = status === 429 || status >= 500;
  return { ok: false, retryable, error: notifyFailed(webhook.name, `it answered HTTP ${status}`) };
}

// Only the origin is ever shown: paths and queries of webhook URLs often carry access tokens.
function originOf(url: string): string | undefined {
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed.origin : undefined;
  } catch {
    return undefined;
  }
}

// Text from outside (here, the fetch implementation) is scrubbed before it is shown anywhere.
function networkReason(error: unknown): string {
  const cause = error instanceof Error ? error.cause : undefined;
  const code = (cause as { code?: unknown } | undefined)?.code;
  return oneLine(typeof code === 'string' ? code : describeError(cause ?? error));
}

function notifyFailed(name: string, reason: string): HoldfastError {
  return new HoldfastError(
    'NOTIFY_FAILED',
    `Webhook '${name}' was not delivered: ${reason}. Check that the receiver is up and its URL is right.`,
  );
}
