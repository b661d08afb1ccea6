import { describe, expect, it } from 'vitest';
import { isHoldfastError } from '../core/index.js';
import {
  EVENT_KINDS,
  parseNotificationSettings,
  redactNotificationSettings,
  type NotificationSettingsInput,
} from './notification-settings.js';

const SECRET = 'whsec-0123456789abcdef-TOPSECRET';
const PASSWORD = 'smtp-pa55word-NEVER-SHOWN';

const VALID: NotificationSettingsInput = {
  webhooks: [
    { name: 'ops', url: 'https://hooks.example.com/holdfast', secret: SECRET },
    { name: 'chat', url: 'http://127.0.0.1:8080/in', secret: SECRET, events: ['job.completed'] },
  ],
  email: {
    host: 'smtp.example.com',
    port: 587,
    user: 'holdfast',
    password: PASSWORD,
    from: 'Holdfast <holdfast@example.com>',
    to: ['ops@example.com'],
  },
};

function problems(input: unknown): string {
  try {
    parseNotificationSettings(input);
  } catch (error) {
    if (isHoldfastError(error, 'REQUEST_INVALID')) return error.message;
    throw error;
  }
  throw new Error('expected the settings to be refused');
}

function withWebhook(patch: Record<string, unknown>): unknown {
  return { webhooks: [{ name: 'ops', url: 'https://h.example/x', secret: SECRET, ...patch }] };
}

describe('parseNotificationSettings', () => {
  it('subscribes channels to failures when they name no events', () => {
    const settings = parseNotificationSettings(VALID);
    expect(settings.webhooks.map((webhook) => webhook.events)).toEqual([
      ['job.failed'],
      ['job.completed'],
    ]);
    expect(settings.email?.events).toEqual(['job.failed']);
    expect(parseNotificationSettings({})).toEqual({ webhooks: [] });
  });

  it('gives each channel its own default list', () => {
    const settings = parseNotificationSettings(VALID);
    expect(settings.webhooks[0]?.events).not.toBe(settings.email?.events);
  });

  it('knows exactly the five event kinds', () => {
    expect(EVENT_KINDS).toEqual([
      'job.failed',
      'vault.replication_lagging',
      'job.completed_with_warnings',
      'job.completed',
      'test',
    ]);
    expect(problems(withWebhook({ events: ['job.started'] }))).toContain('webhooks[0].events[0]');
  });

  it('accepts only http and https URLs', () => {
    for (const url of ['ftp://h.example/x', 'file:///etc/passwd', 'javascript:alert(1)', 'nope']) {
      expect(problems(withWebhook({ url }))).toContain('webhooks[0].url: must be an http://');
    }
  });

  it('refuses credentials in a webhook URL', () => {
    expect(problems(withWebhook({ url: 'https://me:pw@h.example/x' }))).toContain(
      'must not contain a user name or password',
    );
  });

  it('needs a secret of at least 16 characters, and does not echo a refused one', () => {
    const message = problems(withWebhook({ secret: 'short-secret-15' }));
    expect(message).toContain('webhooks[0].secret: must be at least 16 characters');
    expect(message).not.toContain('short-secret-15');
  });

  it('refuses unknown keys, duplicate names and a password without a user', () => {
    expect(problems(withWebhook({ evnets: ['job.failed'] }))).toContain('evnets');
    expect(
      problems({
        webhooks: [
          { name: 'ops', url: 'https://a.example/', secret: SECRET },
          { name: 'ops', url: 'https://b.example/', secret: SECRET },
        ],
      }),
    ).toContain("webhooks[1].name: another webhook is already named 'ops'");
    const { user: _user, ...noUser } = VALID.email ?? { host: '', port: 1, from: '', to: [] };
    expect(problems({ email: noUser })).toContain('email.user: a password needs a user');
  });

  it('checks e-mail addresses, ports and header safety', () => {
    const email = {
      host: 'smtp.example.com',
      port: 25,
      from: 'a@example.com',
      to: ['b@example.com'],
    };
    expect(parseNotificationSettings({ email }).email?.to).toEqual(['b@example.com']);
    expect(problems({ email: { ...email, to: [] } })).toContain('email.to');
    expect(problems({ email: { ...email, to: ['nobody'] } })).toContain('email.to[0]');
    expect(problems({ email: { ...email, port: 70_000 } })).toContain('email.port');
    expect(problems({ email: { ...email, from: 'a@example.com\r\nBcc: x@evil' } })).toContain(
      'email.from',
    );
  });
});

describe('redactNotificationSettings', () => {
  it('replaces secrets and the password with *** and says they are set', () => {
    const settings = parseNotificationSettings(VALID);
    const redacted = redactNotificationSettings(settings);

    expect(JSON.stringify(redacted)).not.toContain(SECRET);
    expect(JSON.stringify(redacted)).not.toContain(PASSWORD);
    expect(redacted.webhooks[0]).toEqual({
      name: 'ops',
      url: 'https://hooks.example.com/holdfast',
      events: ['job.failed'],
      secret: '***',
      hasSecret: true,
    });
    expect(redacted.email).toEqual({
      host: 'smtp.example.com',
      port: 587,
      user: 'holdfast',
      from: 'Holdfast <holdfast@example.com>',
      to: ['ops@example.com'],
      events: ['job.failed'],
      password: '***',
      hasPassword: true,
    });
  });

  it('says when no password is set, and leaves the settings untouched', () => {
    const settings = parseNotificationSettings({
      email: { host: 'h', port: 25, from: 'a@example.com', to: ['b@example.com'] },
    });
    const before = structuredClone(settings);
    const redacted = redactNotificationSettings(settings);
    expect(redacted.email?.hasPassword).toBe(false);
    expect(redacted.email && 'password' in redacted.email).toBe(false);
    redacted.email?.to.push('c@example.com');
    expect(settings).toEqual(before);
  });

  it('strips credentials from a URL even in settings that bypassed the schema', () => {
    const redacted = redactNotificationSettings({
      webhooks: [{ name: 'x', url: 'https://me:hunter2@h.example/p', secret: SECRET, events: [] }],
    });
    expect(redacted.webhooks[0]?.url).toBe('https://h.example/p');
  });
});
