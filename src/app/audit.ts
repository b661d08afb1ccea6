import type { AuditEvent, Catalog } from '../catalog/index.js';
import type { Clock } from '../core/index.js';

/** Fields of a request body that are never written to the audit trail. */
const SECRET_FIELDS = new Set(['passphrase', 'password', 'secret', 'token']);

/** An audit event as the API shows it. */
export interface AuditView {
  readonly seq: number;
  readonly time: string;
  readonly actor: string;
  readonly action: string;
  readonly target: string;
  readonly details: Record<string, unknown>;
}

/**
 * The audit trail of changes made through the API: every successful call that changes
 * something is recorded with the token's name, the operation, its target and the request's
 * fields — secrets left out, nested values (notification settings) only named.
 */
export class AuditLog {
  constructor(
    private readonly catalog: Catalog,
    private readonly clock: Clock,
  ) {}

  async record(actor: string, action: string, target: string, body: unknown): Promise<void> {
    await this.catalog.events.record({
      time: this.clock.now(),
      actor,
      action,
      target,
      details: safeDetails(body),
    });
  }

  async list(limit: number, before?: number): Promise<AuditView[]> {
    const events = await this.catalog.events.list({
      limit,
      ...(before !== undefined ? { before } : {}),
    });
    return events.map(view);
  }
}

function safeDetails(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return {};
  const details: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body)) {
    if (SECRET_FIELDS.has(key)) details[key] = '***';
    else if (typeof value === 'object' && value !== null && !Array.isArray(value))
      details[key] = '{…}';
    else details[key] = value;
  }
  return details;
}

function view(event: AuditEvent): AuditView {
  return { ...event, time: new Date(event.time).toISOString() };
}
