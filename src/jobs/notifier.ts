import { setTimeout as sleepFor } from 'node:timers/promises';
import { HoldfastError, describeError, type Clock } from '../core/index.js';
import { deliverEmail } from './email.js';
import {
  EMAIL_CHANNEL_ID,
  webhookChannelId,
  type ChannelKind,
  type DeliveryResult,
  type JobNotice,
  type NotifyLog,
  type Sleep,
} from './job-notice.js';
import {
  parseNotificationSettings,
  type EventKind,
  type NotificationSettings,
} from './notification-settings.js';
import { scrubSecrets, type DeliveryContext } from './notify-delivery.js';
import { deliverWebhook } from './webhook.js';

/** Defaults of {@link NotifierDeps}. */
export const NOTIFIER_DEFAULTS = { timeoutMs: 10_000, retries: 3, backoffMs: 1_000 } as const;

/** What a {@link Notifier} needs from outside; everything with a clock or I/O is injected. */
export interface NotifierDeps {
  /** Timestamps of payloads, signatures and e-mails. */
  readonly clock: Clock;
  /** For webhooks; the global `fetch` when not given. */
  readonly fetch?: typeof fetch;
  /** Per attempt, for webhooks and for each SMTP step. */
  readonly timeoutMs?: number;
  /** Further attempts after the first, for failures that may pass (network, 5xx, 429). */
  readonly retries?: number;
  /** The wait before the first retry; it doubles on each further one, up to 30 s. */
  readonly backoffMs?: number;
  /** How to wait between attempts; a real timer when not given. */
  readonly sleep?: Sleep;
  /** Where log lines go; they never contain secrets. Nowhere when not given. */
  readonly log?: NotifyLog;
}

/** A configured channel, as listed for the API. */
export interface NotificationChannel {
  /** `webhook:<name>` or `email`; what {@link Notifier.test} takes. */
  readonly id: string;
  readonly kind: ChannelKind;
  readonly events: readonly EventKind[];
}

interface Channel extends NotificationChannel {
  deliver(notice: JobNotice, context: DeliveryContext): Promise<DeliveryResult>;
}

/** Options of one {@link Notifier.notify} or {@link Notifier.test} call. */
export interface NotifyOptions {
  /** Aborting ends waits and open requests; the affected results say CANCELLED. */
  readonly signal?: AbortSignal;
}

/**
 * Sends job notices to the configured webhooks and e-mail, each channel only the events it
 * subscribes to, all channels concurrently. Delivery failures are results, never exceptions.
 */
export class Notifier {
  readonly #channels: readonly Channel[];
  readonly #context: Omit<DeliveryContext, 'signal'>;
  readonly #secrets: readonly string[];

  /**
   * Validates `settings` (throws REQUEST_INVALID) and the numeric options (throws USAGE_INVALID).
   */
  constructor(settings: NotificationSettings, deps: NotifierDeps) {
    const checked = parseNotificationSettings(settings);
    const timeoutMs = deps.timeoutMs ?? NOTIFIER_DEFAULTS.timeoutMs;
    const retries = deps.retries ?? NOTIFIER_DEFAULTS.retries;
    const backoffMs = deps.backoffMs ?? NOTIFIER_DEFAULTS.backoffMs;
    if (!(timeoutMs > 0) || !Number.isInteger(retries) || retries < 0 || !(backoffMs >= 0)) {
      throw new HoldfastError(
        'USAGE_INVALID',
        'Notifier options: timeoutMs must be positive, retries a whole number ≥ 0, backoffMs ≥ 0.',
      );
    }
    const log = deps.log;
    this.#context = {
      now: () => deps.clock.now(),
      timeoutMs,
      retries,
      backoffMs,
      sleep: deps.sleep ?? ((ms, signal) => sleepFor(ms, undefined, { signal })),
      // A logger that throws must not turn a delivery into an exception.
      log: (level, msg, fields) => {
        try {
          log?.(level, msg, fields);
        } catch {
          // Logging is best effort here.
        }
      },
    };
    this.#secrets = [
      ...checked.webhooks.map((webhook) => webhook.secret),
      ...(checked.email?.password === undefined ? [] : [checked.email.password]),
    ];
    this.#channels = buildChannels(checked, deps.fetch ?? globalThis.fetch);
  }

  /** The configured channels, in settings order (webhooks first, then e-mail). */
  get channels(): readonly NotificationChannel[] {
    return this.#channels.map(({ id, kind, events }) => ({ id, kind, events }));
  }

  /**
   * Sends `notice` to every channel subscribed to `notice.kind`; resolves with one result per
   * such channel (none subscribed: an empty list). Never rejects.
   */
  async notify(notice: JobNotice, options: NotifyOptions = {}): Promise<DeliveryResult[]> {
    const targets = this.#channels.filter((channel) => channel.events.includes(notice.kind));
    return this.#deliverAll(targets, notice, options);
  }

  /**
   * Sends a `test` notice to the channel with id `channelId`, or to every channel when not
   * given, subscribed to `test` or not. Throws RESOURCE_NOT_FOUND for an unknown id; delivery
   * failures are results.
   */
  async test(channelId?: string, options: NotifyOptions = {}): Promise<DeliveryResult[]> {
    const targets =
      channelId === undefined
        ? this.#channels
        : this.#channels.filter((channel) => channel.id === channelId);
    if (targets.length === 0 && channelId !== undefined) {
      const known = this.#channels.map((channel) => channel.id).join(', ') || 'none';
      throw new HoldfastError(
        'RESOURCE_NOT_FOUND',
        `No notification channel '${channelId}'. Configured channels: ${known}.`,
      );
    }
    const now = this.#context.now();
    const notice: JobNotice = {
      kind: 'test',
      jobId: 'test',
      jobType: 'test',
      state: 'succeeded',
      startedAt: now,
      endedAt: now,
      message: 'A test notification, sent on request.',
    };
    return this.#deliverAll(targets, notice, options);
  }

  async #deliverAll(
    targets: readonly Channel[],
    notice: JobNotice,
    options: NotifyOptions,
  ): Promise<DeliveryResult[]> {
    const context: DeliveryContext =
      options.signal === undefined ? this.#context : { ...this.#context, signal: options.signal };
    return Promise.all(
      targets.map(async (channel): Promise<DeliveryResult> => {
        try {
          return await channel.deliver(notice, context);
        } catch (error) {
          // The deliverers do not throw; this keeps notify's promise even if one does.
          const message = scrubSecrets(describeError(error), this.#secrets);
          const failure = new HoldfastError(
            'NOTIFY_FAILED',
            `Notification to ${channel.id} failed unexpectedly: ${message}`,
          );
          context.log('error', 'notification failed unexpectedly', {
            channel: channel.id,
            error: failure.message,
          });
          return {
            channel: channel.id,
            kind: channel.kind,
            ok: false,
            attempts: 0,
            error: failure,
          };
        }
      }),
    );
  }
}

function buildChannels(settings: NotificationSettings, fetchFn: typeof fetch): Channel[] {
  const channels: Channel[] = settings.webhooks.map((webhook) => ({
    id: webhookChannelId(webhook.name),
    kind: 'webhook',
    events: webhook.events,
    deliver: (notice, context) => deliverWebhook(webhook, notice, { ...context, fetch: fetchFn }),
  }));
  const email = settings.email;
  if (email !== undefined) {
    channels.push({
      id: EMAIL_CHANNEL_ID,
      kind: 'email',
      events: email.events,
      deliver: (notice, context) => deliverEmail(email, notice, context),
    });
  }
  return channels;
}
