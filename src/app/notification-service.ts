import type { Catalog, JobRecord, VaultRecord } from '../catalog/index.js';
import type { Clock } from '../core/index.js';
import {
  Notifier,
  parseNotificationSettings,
  redactNotificationSettings,
  REDACTED,
  type DeliveryResult,
  type EventKind,
  type NotificationSettings,
  type RedactedNotificationSettings,
} from '../jobs/index.js';
import { nameLookup } from './names.js';

const SETTINGS_KEY = 'notifications';
const NONE: NotificationSettings = { webhooks: [] };

/** A delivery result as the API shows it. */
export interface DeliveryView {
  readonly channel: string;
  readonly ok: boolean;
  readonly attempts: number;
  readonly error?: { readonly code: string; readonly message: string };
}

/**
 * Notification settings (stored in the catalog, shown redacted) and the notifier that tells
 * webhooks and e-mail about finished jobs. A secret sent back as `***` keeps the stored one,
 * so a client can save settings it read.
 */
export class NotificationService {
  private settings: NotificationSettings = NONE;
  private notifier: Notifier;

  constructor(
    private readonly catalog: Catalog,
    private readonly clock: Clock,
  ) {
    this.notifier = new Notifier(NONE, { clock });
  }

  /** Loads the stored settings (at start). */
  async load(): Promise<void> {
    const stored = await this.catalog.settings.get(SETTINGS_KEY);
    this.apply(stored === undefined ? NONE : parseNotificationSettings(stored));
  }

  get(): RedactedNotificationSettings {
    return redactNotificationSettings(this.settings);
  }

  async put(input: unknown): Promise<RedactedNotificationSettings> {
    const settings = parseNotificationSettings(this.keepSecrets(input));
    await this.catalog.settings.set(SETTINGS_KEY, settings);
    this.apply(settings);
    return this.get();
  }

  /** Sends a test notification to one channel (`webhook:<name>`, `email`) or all. */
  async test(channel?: string): Promise<DeliveryView[]> {
    return (await this.notifier.test(channel)).map(deliveryView);
  }

  /** Tells subscribed channels that a job ended; never throws. */
  async jobFinished(job: JobRecord): Promise<DeliveryView[]> {
    const kind = EVENT_OF[job.state];
    if (kind === undefined || this.notifier.channels.length === 0) return [];
    const names = await nameLookup(this.catalog);
    const error = job.result?.['error'] as { message?: string } | undefined;
    const results = await this.notifier.notify({
      kind,
      jobId: job.id,
      jobType: job.type,
      state: job.state,
      ...optional('itemName', names.item(job.itemId)),
      ...optional('vaultName', names.vault(job.vaultId)),
      ...optional('startedAt', job.startedAt),
      ...optional('endedAt', job.endedAt),
      ...optional('message', error?.message ?? null),
      errorCount: Number(job.result?.['errorCount'] ?? job.errors.length),
    });
    return results.map(deliveryView);
  }

  /** Tells subscribed channels that a GRS vault's secondary is behind by more than allowed. */
  async replicationLagging(vault: VaultRecord, lagSeconds: number): Promise<DeliveryView[]> {
    if (this.notifier.channels.length === 0) return [];
    const results = await this.notifier.notify({
      kind: 'vault.replication_lagging',
      jobId: '-',
      jobType: 'replication',
      state: 'lagging',
      vaultName: vault.name,
      message:
        `the secondary ${vault.secondaryLocation ?? ''} has been behind for ${Math.round(lagSeconds)} s ` +
        `(${vault.replication.objectsBehind ?? '?'} objects, ${vault.replication.bytesBehind ?? '?'} bytes as last measured)`,
    });
    return results.map(deliveryView);
  }

  private apply(settings: NotificationSettings): void {
    this.settings = settings;
    this.notifier = new Notifier(settings, { clock: this.clock });
  }

  private keepSecrets(input: unknown): unknown {
    if (typeof input !== 'object' || input === null) return input;
    const copy = structuredClone(input) as {
      webhooks?: Array<{ name?: unknown; secret?: unknown }>;
      email?: { password?: unknown };
    };
    for (const webhook of Array.isArray(copy.webhooks) ? copy.webhooks : []) {
      if (webhook?.secret !== REDACTED) continue;
      const stored = this.settings.webhooks.find((w) => w.name === webhook.name);
      if (stored) webhook.secret = stored.secret;
    }
    if (copy.email?.password === REDACTED && this.settings.email?.password !== undefined)
      copy.email.password = this.settings.email.password;
    return copy;
  }
}

const EVENT_OF: Partial<Record<string, EventKind>> = {
  failed: 'job.failed',
  completed_with_warnings: 'job.completed_with_warnings',
  completed: 'job.completed',
};

function optional<K extends string, V>(key: K, value: V | null): { [P in K]?: V } {
  return (value === null ? {} : { [key]: value }) as { [P in K]?: V };
}

function deliveryView(result: DeliveryResult): DeliveryView {
  return {
    channel: result.channel,
    ok: result.ok,
    attempts: result.attempts,
    ...(result.ok ? {} : { error: { code: result.error.code, message: result.error.message } }),
  };
}
