import type { HoldfastError } from '../core/index.js';
import type { EventKind } from './notification-settings.js';

/** What happened to a job, as told to the notification channels. Times are ms since the epoch. */
export interface JobNotice {
  readonly kind: EventKind;
  readonly jobId: string;
  /** `backup`, `restore`, `prune`, ... */
  readonly jobType: string;
  /** The job's final state, as the job state machine names it. */
  readonly state: string;
  readonly itemName?: string;
  readonly vaultName?: string;
  readonly startedAt?: number;
  readonly endedAt?: number;
  /** A one-line summary, e.g. the error that ended the job. */
  readonly message?: string;
  readonly errorCount?: number;
  /** Bytes processed (for a backup: new bytes stored). */
  readonly bytes?: number;
  /** Link to the job in the web console. */
  readonly consoleUrl?: string;
}

/** The kinds of notification channel. */
export const CHANNEL_KINDS = ['webhook', 'email'] as const;
/** One of {@link CHANNEL_KINDS}. */
export type ChannelKind = (typeof CHANNEL_KINDS)[number];

/** The channel id of the e-mail channel. */
export const EMAIL_CHANNEL_ID = 'email';

/** The channel id of the webhook named `name`: `webhook:<name>`. */
export function webhookChannelId(name: string): string {
  return `webhook:${name}`;
}

/**
 * The outcome of delivering one notice to one channel. A failed delivery is a value, never a
 * thrown error: one unreachable receiver must not hide the others.
 */
export type DeliveryResult =
  | {
      readonly channel: string;
      readonly kind: ChannelKind;
      readonly ok: true;
      /** Attempts made, including the one that succeeded. */
      readonly attempts: number;
    }
  | {
      readonly channel: string;
      readonly kind: ChannelKind;
      readonly ok: false;
      readonly attempts: number;
      /** NOTIFY_FAILED, or CANCELLED when the caller's signal aborted the delivery. */
      readonly error: HoldfastError;
    };

/** Log levels the notifier writes at. */
export const NOTIFY_LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
/** One of {@link NOTIFY_LOG_LEVELS}. */
export type NotifyLogLevel = (typeof NOTIFY_LOG_LEVELS)[number];
/** Where the notifier writes its log lines. Fields MUST NOT contain secrets; the notifier's do not. */
export type NotifyLog = (
  level: NotifyLogLevel,
  msg: string,
  fields: Readonly<Record<string, unknown>>,
) => void;

/** Waits `ms`; rejects when `signal` aborts. Injected so tests do not wait out backoffs. */
export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;
