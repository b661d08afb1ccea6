import { inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../core/index.js';
import type { DeliveryResult, JobNotice } from './job-notice.js';
import {
  parseNotificationSettings,
  type NotificationSettingsInput,
} from './notification-settings.js';
import { Notifier, type NotifierDeps } from './notifier.js';
import {
  closedPort,
  startSmtpReceiver,
  startWebhookReceiver,
  type Answer,
  type SmtpReceiver,
  type WebhookReceiver,
} from './notify-receivers.testkit.js';
import { verifyWebhookSignature } from './webhook.js';

const SECRET = 'whsec-0123456789abcdef-TOPSECRET';
const PASSWORD = 'smtp-pa55word-NEVER-LOGGED';
const NOW = Date.parse('2025-03-01T02:00:00.000Z');

function notice(kind: JobNotice['kind']): JobNotice {
  return { kind, jobId: 'job-7', jobType: 'backup', state: 'done', itemName: 'docs' };
}

const closers: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((closer) => closer.close()));
});

async function hook(answer?: () => Answer): Promise<WebhookReceiver> {
  const receiver = await startWebhookReceiver(answer);
  closers.push(receiver);
  return receiver;
}

async function smtp(credentials?: { user: string; password: string }): Promise<SmtpReceiver> {
  const receiver = await startSmtpReceiver(credentials);
  closers.push(receiver);
  return receiver;
}

function notifier(settings: NotificationSettingsInput, deps: Partial<NotifierDeps> = {}) {
  const lines: string[] = [];
  const instance = new Notifier(parseNotificationSettings(settings), {
    clock: new ManualClock(NOW),
    timeoutMs: 2_000,
    retries: 1,
    backoffMs: 10,
    sleep: async () => {},
    log: (level, msg, fields) => lines.push(`${level} ${msg} ${JSON.stringify(fields)}`),
    ...deps,
  });
  return { notifier: instance, lines };
}

const channelsOf = (results: DeliveryResult[]) => results.map((result) => result.channel).sort();

describe('Notifier', () => {
  it('sends each event only to the channels subscribed to it', async () => {
    const [failures, everything, mail] = [await hook(), await hook(), await smtp()];
    const { notifier: n } = notifier({
      webhooks: [
        { name: 'failures', url: failures.url, secret: SECRET },
        {
          name: 'everything',
          url: everything.url,
          secret: SECRET,
          events: ['job.failed', 'job.completed_with_warnings', 'job.completed'],
        },
      ],
      email: {
        host: '127.0.0.1',
        port: mail.port,
        from: 'holdfast@example.com',
        to: ['ops@example.com'],
        events: ['job.completed'],
      },
    });

    expect(channelsOf(await n.notify(notice('job.failed')))).toEqual([
      'webhook:everything',
      'webhook:failures',
    ]);
    expect(channelsOf(await n.notify(notice('job.completed')))).toEqual([
      'email',
      'webhook:everything',
    ]);
    expect(channelsOf(await n.notify(notice('job.completed_with_warnings')))).toEqual([
      'webhook:everything',
    ]);
    expect(await n.notify(notice('test'))).toEqual([]);

    expect(failures.requests.map((r) => r.headers['x-holdfast-event'])).toEqual(['job.failed']);
    expect(everything.requests.map((r) => r.headers['x-holdfast-event'])).toEqual([
      'job.failed',
      'job.completed',
      'job.completed_with_warnings',
    ]);
    expect(mail.messages).toHaveLength(1);
    expect(mail.messages[0]?.raw).toContain("Subject: [Holdfast] backup of item 'docs' completed");
  });

  it('sends a test notification to one channel or to all, subscribed or not', async () => {
    const [a, b, mail] = [await hook(), await hook(), await smtp()];
    const { notifier: n } = notifier({
      webhooks: [
        { name: 'a', url: a.url, secret: SECRET },
        { name: 'b', url: b.url, secret: SECRET },
      ],
      email: { host: '127.0.0.1', port: mail.port, from: 'h@example.com', to: ['o@example.com'] },
    });
    expect(n.channels.map((channel) => channel.id)).toEqual(['webhook:a', 'webhook:b', 'email']);

    const one = await n.test('webhook:b');
    expect(one).toEqual([{ channel: 'webhook:b', kind: 'webhook', ok: true, attempts: 1 }]);
    expect([a.requests.length, b.requests.length]).toEqual([0, 1]);
    const [request] = b.requests;
    expect(request?.headers['x-holdfast-event']).toBe('test');
    expect(
      verifyWebhookSignature({
        secret: SECRET,
        timestamp: request?.headers['x-holdfast-timestamp'] as string,
        body: request?.body ?? '',
        signature: request?.headers['x-holdfast-signature'] as string,
        nowMs: NOW,
      }),
    ).toBe(true);

    const all = await n.test();
    expect(all.every((result) => result.ok)).toBe(true);
    expect(channelsOf(all)).toEqual(['email', 'webhook:a', 'webhook:b']);
    expect(mail.messages[0]?.raw).toContain('Subject: [Holdfast] test notification');

    await expect(n.test('webhook:nope')).rejects.toMatchObject({ code: 'RESOURCE_NOT_FOUND' });
  });

  it('never puts a secret or the password in a result, an error or a log line', async () => {
    const refusing = await hook(() => ({ status: 401 }));
    const failing = await hook(() => ({ status: 500 }));
    const port = await closedPort();
    const mail = await smtp({ user: 'holdfast', password: 'the-right-one' });
    const secret = (name: string) => `${SECRET}-${name}`;
    const { notifier: n, lines } = notifier({
      webhooks: [
        { name: 'refusing', url: refusing.url, secret: secret('refusing') },
        { name: 'failing', url: failing.url, secret: secret('failing') },
        { name: 'closed', url: `http://127.0.0.1:${port}/`, secret: secret('closed') },
      ],
      email: {
        host: '127.0.0.1',
        port: mail.port,
        user: 'holdfast',
        password: PASSWORD,
        from: 'h@example.com',
        to: ['o@example.com'],
      },
    });

    const results = await n.notify(notice('job.failed'));
    expect(results.map((result) => [result.channel, result.ok, result.attempts])).toEqual([
      ['webhook:refusing', false, 1],
      ['webhook:failing', false, 2],
      ['webhook:closed', false, 2],
      ['email', false, 1],
    ]);
    // The receivers did see the credentials, so a leak would have had something to leak.
    expect(mail.logins.map((login) => login.password)).toEqual([PASSWORD]);

    const errors = results.flatMap((result) => (result.ok ? [] : [result.error]));
    expect(errors.map((error) => error.code)).toEqual(Array(4).fill('NOTIFY_FAILED'));
    const seen = [
      inspect(results, { depth: 20, showHidden: true }),
      JSON.stringify(results),
      ...errors.map((error) => `${error.message} ${inspect(error.cause)}`),
      ...lines,
    ].join('\n');
    expect(lines.length).toBeGreaterThan(4);
    for (const hidden of [PASSWORD, SECRET, Buffer.from(PASSWORD).toString('base64')]) {
      expect(seen).not.toContain(hidden);
    }
  });

  it('turns even a throwing fetch or logger into results', async () => {
    const { notifier: n } = notifier(
      { webhooks: [{ name: 'x', url: 'http://127.0.0.1:9/', secret: SECRET }] },
      {
        retries: 0,
        fetch: () => {
          throw new TypeError(`boom ${SECRET}`);
        },
        log: () => {
          throw new Error('log sink is down');
        },
      },
    );
    const results = await n.notify(notice('job.failed'));
    expect(results).toMatchObject([{ channel: 'webhook:x', ok: false }]);
    expect(inspect(results, { depth: 20 })).not.toContain(SECRET);
  });

  it('says CANCELLED when the caller aborts before sending', async () => {
    const receiver = await hook();
    const { notifier: n } = notifier({
      webhooks: [{ name: 'x', url: receiver.url, secret: SECRET }],
    });
    const results = await n.notify(notice('job.failed'), { signal: AbortSignal.abort() });
    expect(results).toMatchObject([{ ok: false, attempts: 0, error: { code: 'CANCELLED' } }]);
    expect(receiver.requests).toHaveLength(0);
  });

  it('refuses invalid settings and options when constructed', () => {
    const clock = new ManualClock(NOW);
    const bad = { webhooks: [{ name: 'x', url: 'ftp://h/', secret: SECRET, events: [] }] };
    expect(() => new Notifier(bad as never, { clock })).toThrow(
      expect.objectContaining({ code: 'REQUEST_INVALID' }),
    );
    expect(() => new Notifier({ webhooks: [] }, { clock, retries: -1 })).toThrow(
      expect.objectContaining({ code: 'USAGE_INVALID' }),
    );
  });
});
