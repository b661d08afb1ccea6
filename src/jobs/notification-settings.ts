import { z } from 'zod';
import { HoldfastError } from '../core/index.js';

/**
 * The events a notification channel can subscribe to. `test` is what "send a test notification"
 * sends; a channel receives it from `Notifier.test()` whether or not it subscribes to it.
 */
export const EVENT_KINDS = [
  'job.failed',
  'vault.replication_lagging',
  'job.completed_with_warnings',
  'job.completed',
  'test',
] as const;
/** One of {@link EVENT_KINDS}. */
export type EventKind = (typeof EVENT_KINDS)[number];

/** What a channel subscribes to when its settings name no events: failures are what matter. */
export const DEFAULT_EVENTS: readonly EventKind[] = ['job.failed'];

/** The value that stands in for a secret or password in redacted settings. */
export const REDACTED = '***';

// Header values and names end up in mail headers, log lines and HTTP headers: a CR or LF in
// one would let a setting inject headers of its own.
const NO_CONTROL_CHARS = /^[^\u0000-\u001f\u007f]*$/;
// `name@host` or `Display Name <name@host>`; nodemailer parses the rest.
const MAILBOX = /^(?:[^<>]*<[^<>@\s]+@[^<>@\s]+>|[^<>@\s]+@[^<>@\s]+)$/;

const text = (max: number) =>
  z.string().min(1).max(max).regex(NO_CONTROL_CHARS, 'must not contain control characters');
const mailbox = text(320).regex(MAILBOX, "must be 'name@host' or 'Name <name@host>'");
const events = z.array(z.enum(EVENT_KINDS)).default(() => [...DEFAULT_EVENTS]);

const webhookSettingsSchema = z.strictObject({
  name: z
    .string()
    .regex(
      /^[A-Za-z0-9._-]{1,64}$/,
      'must be 1 to 64 letters, digits, dots, dashes or underscores',
    ),
  url: z
    .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })
    .max(2048)
    // Credentials in the URL would be shown wherever the URL is; the signature authenticates.
    .refine((value) => !/^[a-z]+:\/\/[^/?#]*@/i.test(value), {
      error: 'must not contain a user name or password; receivers check the signature instead',
    }),
  secret: z
    .string()
    .min(16, 'must be at least 16 characters; generate one with `openssl rand -hex 32`')
    .max(1024),
  events,
});

const emailSettingsSchema = z
  .strictObject({
    host: text(253),
    port: z.int().min(1).max(65_535),
    secure: z.boolean().optional(),
    user: text(256).optional(),
    password: z.string().min(1).max(1024).optional(),
    from: mailbox,
    to: z.array(mailbox).min(1).max(50),
    events,
  })
  .refine((email) => email.password === undefined || email.user !== undefined, {
    error: 'a password needs a user',
    path: ['user'],
  });

/**
 * Schema of the notification settings: signed webhooks and one e-mail channel. Unknown keys are
 * errors (a misspelt `evnets` must not silently mean "the default events").
 */
export const notificationSettingsSchema = z
  .strictObject({
    webhooks: z
      .array(webhookSettingsSchema)
      .max(20)
      .default(() => []),
    email: emailSettingsSchema.optional(),
  })
  .superRefine((settings, ctx) => {
    const seen = new Set<string>();
    settings.webhooks.forEach((webhook, index) => {
      if (seen.has(webhook.name)) {
        ctx.addIssue({
          code: 'custom',
          message: `another webhook is already named '${webhook.name}'`,
          path: ['webhooks', index, 'name'],
        });
      }
      seen.add(webhook.name);
    });
  });

/** Notification settings as stored and used, with defaults applied. */
export type NotificationSettings = z.output<typeof notificationSettingsSchema>;
/** Notification settings as written by an operator, before defaults. */
export type NotificationSettingsInput = z.input<typeof notificationSettingsSchema>;
/** One webhook channel. */
export type WebhookSettings = NotificationSettings['webhooks'][number];
/** The e-mail channel. */
export type EmailSettings = NonNullable<NotificationSettings['email']>;

/**
 * Validates and normalizes notification settings. Throws REQUEST_INVALID listing every problem by
 * path; messages never repeat the offending values, so a mistyped secret is not echoed.
 */
export function parseNotificationSettings(input: unknown): NotificationSettings {
  const result = notificationSettingsSchema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const path = issue.path.map((part) =>
      typeof part === 'number' ? `[${part}]` : `.${String(part)}`,
    );
    return `${path.join('').replace(/^\./, '') || '(settings)'}: ${issue.message}`;
  });
  throw new HoldfastError(
    'REQUEST_INVALID',
    `Invalid notification settings: ${problems.join('; ')}.`,
  );
}

/** A webhook as shown by the API: the secret replaced by {@link REDACTED}. */
export type RedactedWebhookSettings = Omit<WebhookSettings, 'secret'> & {
  readonly secret: typeof REDACTED;
  /** Whether a secret is set. */
  readonly hasSecret: boolean;
};

/** The e-mail channel as shown by the API: the password, if any, replaced by {@link REDACTED}. */
export type RedactedEmailSettings = Omit<EmailSettings, 'password'> & {
  readonly password?: typeof REDACTED;
  /** Whether a password is set. */
  readonly hasPassword: boolean;
};

/** Notification settings safe for API responses and log lines. */
export interface RedactedNotificationSettings {
  readonly webhooks: RedactedWebhookSettings[];
  readonly email?: RedactedEmailSettings;
}

/**
 * A deep copy of `settings` safe to return from the API and to log: webhook secrets and the SMTP
 * password become {@link REDACTED}, with a boolean saying whether one is set.
 */
export function redactNotificationSettings(
  settings: NotificationSettings,
): RedactedNotificationSettings {
  const webhooks = settings.webhooks.map((webhook): RedactedWebhookSettings => ({
    name: webhook.name,
    url: stripUrlCredentials(webhook.url),
    events: [...webhook.events],
    secret: REDACTED,
    hasSecret: webhook.secret.length > 0,
  }));
  if (settings.email === undefined) return { webhooks };
  const { password, to, events: emailEvents, ...rest } = settings.email;
  const email: RedactedEmailSettings = {
    ...rest,
    to: [...to],
    events: [...emailEvents],
    hasPassword: password !== undefined && password.length > 0,
    ...(password !== undefined ? { password: REDACTED } : {}),
  };
  return { webhooks, email };
}

// The schema refuses credentials in URLs, but settings built in code bypass it; redaction must
// hold regardless.
function stripUrlCredentials(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.username === '' && parsed.password === '') return url;
    parsed.username = '';
    parsed.password = '';
    return parsed.toString();
  } catch {
    return REDACTED;
  }
}
