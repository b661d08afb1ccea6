import type { Kysely } from 'kysely';
import { num, readJson, writeJson } from './json-column.js';
import type { CatalogDatabase } from './schema.js';

/** One change made through the API: who, what, to what, when. */
export interface AuditEvent {
  readonly seq: number;
  readonly time: number;
  /** The API token's name. */
  readonly actor: string;
  /** The API operation, e.g. `stopProtection`. */
  readonly action: string;
  /** What it acted on, e.g. `items/docs`. */
  readonly target: string;
  readonly details: Record<string, unknown>;
}

/** The audit trail: append-only through this store (no update, no delete). */
export class EventStore {
  constructor(private readonly db: Kysely<CatalogDatabase>) {}

  /** Appends an event. */
  async record(event: Omit<AuditEvent, 'seq'>): Promise<void> {
    await this.db
      .insertInto('events')
      .values({
        time: event.time,
        actor: event.actor,
        action: event.action,
        target: event.target,
        details_json: writeJson(event.details),
      })
      .execute();
  }

  /** The newest events first; `before` pages back from a sequence number. */
  async list(options: { limit: number; before?: number }): Promise<AuditEvent[]> {
    let query = this.db.selectFrom('events').selectAll();
    if (options.before !== undefined) query = query.where('seq', '<', options.before);
    const rows = await query.orderBy('seq', 'desc').limit(options.limit).execute();
    return rows.map((row) => ({
      seq: Number(row.seq),
      time: num(row.time),
      actor: row.actor,
      action: row.action,
      target: row.target,
      details: readJson<Record<string, unknown>>(row.details_json, 'events.details_json'),
    }));
  }
}
