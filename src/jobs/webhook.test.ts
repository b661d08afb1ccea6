import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../core/index.js';
import type { JobNotice, NotifyLogLevel } from './job-notice.js';
import type { WebhookSettings } from './notification-settings.js';
import {
  closedPort,
  startWebhookReceiver,
  type Answer,
  type ReceivedRequest,
  type WebhookReceiver,
} from './notify-receivers.testkit.js';
import {
  deliverWebhook,
  signWebhookBody,
  verifyWebhookSignature,
  type WebhookDeliveryContext,
} from './webhook.js';

const SECRET = 'whsec-0123456789abcdef-TOPSECRET';
const NOW = Date.parse('2025-03-01T02:00:00.000Z');
const NOTICE: JobNotice = {
  kind: 'job.failed',
  jobId: 'job-42',
  jobType: 'backup',
  state: 'failed',
  itemName: 'docs',
  vaultName: 'main',
  startedAt: NOW - 90_000,
  endedAt: NOW - 1_000,
  message: 'source unreadable',
  errorCount: 2,
};

const receivers: WebhookReceiver[] = [];
afterEach(async () => {
  await Promise.all(receivers.splice(0).map((receiver) => receiver.close()));
});

async function receiver(answer?: (request: ReceivedRequest, index: number) => Answer) {
  const started = await startWebhookReceiver(answer);
  receivers.push(started);
  return started;
}

function webhook(url: string): WebhookSettings {
  return { name: 'ops', url, secret: SECRET, events: ['job.failed'] };
}

function setup(overrides: Partial<WebhookDeliveryContext> = {}) {
  const clock = new ManualClock(NOW);
  const waits: number[] = [];
  const lines: { level: NotifyLogLevel; msg: string; fields: unknown }[] = [];
  const context: WebhookDeliveryContext = {
    now: () => clock.now(),
    timeoutMs: 2_000,
    retries: 3,
    backoffMs: 100,
    // The clock moves by the backoff, so each retry is signed with a later timestamp.
    sleep: async (ms) => {
      waits.push(ms);
      clock.advance(ms);
    },
    log: (level, msg, fields) => lines.push({ level, msg, fields }),
    fetch: globalThis.fetch,
    ...overrides,
  };
  return { clock, waits, lines, context };
}

function verified(request: ReceivedRequest, nowMs: number): boolean {
  return verifyWebhookSignature({
    secret: SECRET,
    timestamp: request.headers['x-holdfast-timestamp'] as string | undefined,
    body: request.body,
    signature: request.headers['x-holdfast-signature'] as string | undefined,
    nowMs,
  });
}

describe('deliverWebhook against a real HTTP receiver', () => {
  it('POSTs signed JSON that the receiver verifies', async () => {
    const { context } = setup();
    const hook = await receiver();
    const result = await deliverWebhook(webhook(hook.url), NOTICE, context);

    expect(result).toEqual({ channel: 'webhook:ops', kind: 'webhook', ok: true, attempts: 1 });
    expect(hook.requests).toHaveLength(1);
    const [request] = hook.requests;
    if (request === undefined) throw new Error('no request');
    expect(request.method).toBe('POST');
    expect(request.path).toBe('/hooks/holdfast?token=path-token');
    expect(request.headers['content-type']).toBe('application/json');
    expect(request.headers['x-holdfast-event']).toBe('job.failed');
    expect(request.headers['x-holdfast-timestamp']).toBe(String(NOW / 1000));
    expect(request.headers['x-holdfast-signature']).toMatch(/^v1=[0-9a-f]{64}$/);
    expect(verified(request, NOW + 1_000)).toBe(true);
    expect(JSON.parse(request.body.toString('utf8'))).toEqual({
      event: 'job.failed',
      sentAt: '2025-03-01T02:00:00.000Z',
      job: {
        id: 'job-42',
        type: 'backup',
        state: 'failed',
        itemName: 'docs',
        vaultName: 'main',
        startedAt: '2025-03-01T01:58:30.000Z',
        endedAt: '2025-03-01T01:59:59.000Z',
        message: 'source unreadable',
        errorCount: 2,
      },
    });
  });

  it('retries 5xx with exponential backoff: 500, 500, 200 is three attempts', async () => {
    const { context, waits, clock } = setup({ backoffMs: 1_000 });
    const hook = await receiver((_request, index) => ({ status: index < 2 ? 500 : 200 }));
    const result = await deliverWebhook(webhook(hook.url), NOTICE, context);

    expect(result).toMatchObject({ ok: true, attempts: 3 });
    expect(hook.requests).toHaveLength(3);
    expect(waits).toEqual([1_000, 2_000]);
    // Every attempt carries a valid signature of its own time.
    const stamps = hook.requests.map((request) => request.headers['x-holdfast-timestamp']);
    expect(new Set(stamps).size).toBe(3);
    for (const request of hook.requests) expect(verified(request, clock.now())).toBe(true);
  });

  it('retries 429 too, and gives up after the configured retries', async () => {
    const { context, waits } = setup({ retries: 2 });
    const hook = await receiver(() => ({ status: 429 }));
    const result = await deliverWebhook(webhook(hook.url), NOTICE, context);

    expect(result).toMatchObject({ ok: false, attempts: 3, error: { code: 'NOTIFY_FAILED' } });
    expect(hook.requests).toHaveLength(3);
    expect(waits).toEqual([100, 200]);
  });

  it('does not retry a 4xx answer', async () => {
    const { context, waits } = setup();
    const hook = await receiver(() => ({ status: 400 }));
    const result = await deliverWebhook(webhook(hook.url), NOTICE, context);

    expect(result).toMatchObject({ ok: false, attempts: 1, error: { code: 'NOTIFY_FAILED' } });
    if (result.ok) throw new Error('expected a failure');
    expect(result.error.message).toContain('HTTP 400');
    expect(hook.requests).toHaveLength(1);
    expect(waits).toEqual([]);
  });

  it('fails cleanly, as a result, when nothing listens on the port', async () => {
    const { context, lines } = setup({ retries: 1 });
    const port = await closedPort();
    const result = await deliverWebhook(webhook(`http://127.0.0.1:${port}/x`), NOTICE, context);

    expect(result).toMatchObject({ ok: false, attempts: 2, error: { code: 'NOTIFY_FAILED' } });
    if (result.ok) throw new Error('expected a failure');
    expect(result.error.message).toContain('ECONNREFUSED');
    expect(lines.map((line) => line.level)).toEqual(['warn', 'error']);
  });

  it('ends an attempt that gets no answer within the timeout', async () => {
    const { context } = setup({ timeoutMs: 200, retries: 0 });
    const hook = await receiver(() => 'hang');
    const result = await deliverWebhook(webhook(hook.url), NOTICE, context);

    expect(result).toMatchObject({ ok: false, attempts: 1, error: { code: 'NOTIFY_FAILED' } });
    if (result.ok) throw new Error('expected a failure');
    expect(result.error.message).toContain('did not answer within 200 ms');
  });

  it('does not follow a redirect: 3xx is a failure and the other host gets nothing', async () => {
    const { context } = setup();
    const elsewhere = await receiver();
    const hook = await receiver(() => ({ status: 307, headers: { location: elsewhere.url } }));
    const result = await deliverWebhook(webhook(hook.url), NOTICE, context);

    expect(result).toMatchObject({ ok: false, attempts: 1, error: { code: 'NOTIFY_FAILED' } });
    expect(elsewhere.requests).toHaveLength(0);
  });

  it('refuses a URL that is not http(s) without sending anything', async () => {
    const { context } = setup();
    const result = await deliverWebhook(webhook('file:///etc/passwd'), NOTICE, context);
    expect(result).toMatchObject({ ok: false, attempts: 0, error: { code: 'NOTIFY_FAILED' } });
  });

  it('stops waiting between attempts when the signal aborts', async () => {
    const controller = new AbortController();
    const { context } = setup({
      signal: controller.signal,
      sleep: async () => {
        controller.abort();
        throw new Error('aborted');
      },
    });
    const hook = await receiver(() => ({ status: 503 }));
    const result = await deliverWebhook(webhook(hook.url), NOTICE, context);
    expect(result).toMatchObject({ ok: false, attempts: 1, error: { code: 'CANCELLED' } });
  });

  it('logs only the origin of the URL, never its path or query', async () => {
    const { context, lines } = setup({ retries: 0 });
    const hook = await receiver(() => ({ status: 500 }));
    await deliverWebhook(webhook(hook.url), NOTICE, context);
    const logged = JSON.stringify(lines);
    expect(logged).toContain(new URL(hook.url).origin);
    expect(logged).not.toContain('path-token');
  });
});

describe('verifyWebhookSignature', () => {
  const body = JSON.stringify({ event: 'test', sentAt: 'x', job: {} });
  const timestamp = String(NOW / 1000);
  const signature = signWebhookBody(SECRET, timestamp, body);
  const check = { secret: SECRET, timestamp, body, signature, nowMs: NOW };

  it('accepts the signature of the untouched body, as string or bytes', () => {
    expect(verifyWebhookSignature(check)).toBe(true);
    expect(verifyWebhookSignature({ ...check, body: Buffer.from(body) })).toBe(true);
  });

  it('rejects a tampered body', () => {
    expect(verifyWebhookSignature({ ...check, body: body.replace('test', 'tset') })).toBe(false);
  });

  it('rejects a timestamp outside the tolerance, either way', () => {
    expect(verifyWebhookSignature({ ...check, nowMs: NOW + 300_001 })).toBe(false);
    expect(verifyWebhookSignature({ ...check, nowMs: NOW - 300_001 })).toBe(false);
    expect(verifyWebhookSignature({ ...check, nowMs: NOW + 300_000 })).toBe(true);
    expect(verifyWebhookSignature({ ...check, nowMs: NOW + 60_000, toleranceMs: 1_000 })).toBe(
      false,
    );
  });

  it('rejects an old timestamp even with a signature made for it', () => {
    const old = String(NOW / 1000 - 3_600);
    const oldSignature = signWebhookBody(SECRET, old, body);
    expect(verifyWebhookSignature({ ...check, timestamp: old, signature: oldSignature })).toBe(
      false,
    );
  });

  it('rejects a changed timestamp, the wrong secret, and malformed or missing headers', () => {
    expect(verifyWebhookSignature({ ...check, timestamp: String(NOW / 1000 + 1) })).toBe(false);
    expect(verifyWebhookSignature({ ...check, secret: `${SECRET}x` })).toBe(false);
    expect(verifyWebhookSignature({ ...check, signature: signature.slice(3) })).toBe(false);
    expect(verifyWebhookSignature({ ...check, signature: `${signature.slice(0, -2)}` })).toBe(
      false,
    );
    expect(verifyWebhookSignature({ ...check, signature: undefined })).toBe(false);
    expect(verifyWebhookSignature({ ...check, timestamp: undefined })).toBe(false);
    expect(verifyWebhookSignature({ ...check, timestamp: '1e9' })).toBe(false);
  });

  it('accepts a list of signatures when one of them matches', () => {
    const other = signWebhookBody('another-secret-of-16+', timestamp, body);
    expect(verifyWebhookSignature({ ...check, signature: `${other}, ${signature}` })).toBe(true);
  });
});
