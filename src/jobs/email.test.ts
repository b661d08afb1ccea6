import { inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../core/index.js';
import { deliverEmail, emailMessage } from './email.js';
import type { JobNotice } from './job-notice.js';
import type { EmailSettings } from './notification-settings.js';
import type { DeliveryContext } from './notify-delivery.js';
import { closedPort, startSmtpReceiver, type SmtpReceiver } from './notify-receivers.testkit.js';

const PASSWORD = 'smtp-pa55word-NEVER-LOGGED';
const NOW = Date.parse('2025-03-01T02:00:00.000Z');
const NOTICE: JobNotice = {
  kind: 'job.failed',
  jobId: 'job-42',
  jobType: 'backup',
  state: 'failed',
  itemName: 'docs',
  vaultName: 'main',
  startedAt: NOW - 62_000,
  endedAt: NOW,
  message: 'source unreadable:\r\nBcc: injected@example.com',
  errorCount: 3,
  bytes: 1536,
  consoleUrl: 'https://holdfast.example/jobs/job-42',
};

const servers: SmtpReceiver[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

function setup(overrides: Partial<DeliveryContext> = {}) {
  const clock = new ManualClock(NOW);
  const waits: number[] = [];
  const lines: string[] = [];
  const context: DeliveryContext = {
    now: () => clock.now(),
    timeoutMs: 2_000,
    retries: 2,
    backoffMs: 100,
    sleep: async (ms) => {
      waits.push(ms);
    },
    log: (level, msg, fields) => lines.push(`${level} ${msg} ${JSON.stringify(fields)}`),
    ...overrides,
  };
  return { waits, lines, context };
}

function settings(port: number, auth?: { user: string; password: string }): EmailSettings {
  return {
    host: '127.0.0.1',
    port,
    secure: false,
    ...(auth === undefined ? {} : { user: auth.user, password: auth.password }),
    from: 'Holdfast <holdfast@example.com>',
    to: ['ops@example.com', 'oncall@example.com'],
    events: ['job.failed'],
  };
}

/** The header block of a raw message, unfolded, as `name: value` lines. */
function headers(raw: string): string[] {
  const head = raw.split('\r\n\r\n')[0] ?? '';
  return head.replace(/\r\n[ \t]+/g, ' ').split('\r\n');
}

describe('emailMessage', () => {
  it('names the job, item and outcome in the subject and lists the facts in the body', () => {
    const message = emailMessage(NOTICE);
    expect(message.subject).toBe("[Holdfast] backup of item 'docs' failed");
    expect(message.text).toContain("Holdfast: backup of item 'docs' failed.");
    for (const row of [
      'Job:      job-42',
      'Type:     backup',
      'Item:     docs',
      'Vault:    main',
      'State:    failed',
      'Started:  2025-03-01T01:58:58.000Z',
      'Ended:    2025-03-01T02:00:00.000Z',
      'Duration: 1m02s',
      'Errors:   3',
      'Data:     1.50 KiB',
      'Message:  source unreadable: Bcc: injected@example.com',
      'Console:  https://holdfast.example/jobs/job-42',
    ]) {
      expect(message.text).toContain(`\n${row}\n`);
    }
  });

  it('leaves out what the notice does not have, and says so for a test', () => {
    const message = emailMessage({ kind: 'test', jobId: 't', jobType: 'test', state: 'ok' });
    expect(message.subject).toBe('[Holdfast] test notification');
    expect(message.text).toContain('This is a test notification from Holdfast.');
    expect(message.text).not.toContain('Item:');
    const { itemName: _itemName, ...vaultOnlyNotice } = NOTICE;
    const vaultOnly = emailMessage(vaultOnlyNotice);
    expect(vaultOnly.subject).toBe("[Holdfast] backup of vault 'main' failed");
  });
});

describe('deliverEmail against a real SMTP server', () => {
  it('delivers from, to, subject and body', async () => {
    const server = await startSmtpReceiver();
    servers.push(server);
    const { context } = setup();
    const result = await deliverEmail(settings(server.port), NOTICE, context);

    expect(result).toEqual({ channel: 'email', kind: 'email', ok: true, attempts: 1 });
    expect(server.messages).toHaveLength(1);
    const [mail] = server.messages;
    if (mail === undefined) throw new Error('no mail');
    expect(mail.mailFrom).toBe('holdfast@example.com');
    expect(mail.rcptTo).toEqual(['ops@example.com', 'oncall@example.com']);
    const head = headers(mail.raw);
    expect(head).toContain('From: Holdfast <holdfast@example.com>');
    expect(head).toContain('To: ops@example.com, oncall@example.com');
    expect(head).toContain("Subject: [Holdfast] backup of item 'docs' failed");
    expect(head).toContain('Date: Sat, 01 Mar 2025 02:00:00 +0000');
    // The CR LF in the job's message must not have become a header of its own.
    expect(head.some((line) => line.toLowerCase().startsWith('bcc:'))).toBe(false);
    expect(mail.raw).toContain('Job:      job-42');
    expect(mail.raw).toContain('Item:     docs');
    expect(mail.raw).toContain('Vault:    main');
  });

  it('logs in with AUTH when a user and password are set', async () => {
    const server = await startSmtpReceiver({ user: 'holdfast', password: PASSWORD });
    servers.push(server);
    const { context } = setup();
    const result = await deliverEmail(
      settings(server.port, { user: 'holdfast', password: PASSWORD }),
      NOTICE,
      context,
    );
    expect(result).toMatchObject({ ok: true, attempts: 1 });
    expect(server.messages.map((mail) => mail.user)).toEqual(['holdfast']);
  });

  it('reports a refused login as NOTIFY_FAILED without retrying and without the password', async () => {
    const server = await startSmtpReceiver({ user: 'holdfast', password: 'the-right-one' });
    servers.push(server);
    const { context, lines, waits } = setup();
    const result = await deliverEmail(
      settings(server.port, { user: 'holdfast', password: PASSWORD }),
      NOTICE,
      context,
    );

    expect(result).toMatchObject({ ok: false, attempts: 1, error: { code: 'NOTIFY_FAILED' } });
    if (result.ok) throw new Error('expected a failure');
    expect(result.error.message).toContain('refused the login');
    // The server did get the password: the test proves it could have leaked.
    expect(server.logins.map((login) => login.password)).toEqual([PASSWORD]);
    expect(server.messages).toHaveLength(0);
    expect(waits).toEqual([]);
    const everything = [inspect(result, { depth: 20, showHidden: true }), ...lines].join('\n');
    expect(everything).not.toContain(PASSWORD);
    expect(everything).not.toContain(Buffer.from(PASSWORD).toString('base64'));
  });

  it('retries a server that cannot be reached, then fails with a result', async () => {
    const port = await closedPort();
    const { context, waits, lines } = setup();
    const result = await deliverEmail(settings(port), NOTICE, context);

    expect(result).toMatchObject({ ok: false, attempts: 3, error: { code: 'NOTIFY_FAILED' } });
    if (result.ok) throw new Error('expected a failure');
    expect(result.error.message).toContain(`127.0.0.1:${port}`);
    expect(result.error.message).toContain('ECONNREFUSED');
    expect(waits).toEqual([100, 200]);
    expect(lines.filter((line) => line.startsWith('warn '))).toHaveLength(2);
  });
});
