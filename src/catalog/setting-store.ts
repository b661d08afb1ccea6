import type { Kysely } from 'kysely';
import type { Clock } from '../core/index.js';
import { readJson, writeJson } from './json-column.js';
import type { CatalogDatabase } from './schema.js';

/** Server-wide settings by key; values are JSON validated by their owners. */
export class SettingStore {
  constructor(
    private readonly db: Kysely<CatalogDatabase>,
    private readonly clock: Clock,
  ) {}

  /** The stored value, or undefined. */
  async get(key: string): Promise<unknown> {
    const row = await this.db
      .selectFrom('settings')
      .select('value_json')
      .where('key', '=', key)
      .executeTakeFirst();
    return row === undefined ? undefined : readJson(row.value_json, `settings.${key}`);
  }

  /** Stores a value, replacing any earlier one. */
  async set(key: string, value: unknown): Promise<void> {
    const row = { key, value_json: writeJson(value), updated_at: this.clock.now() };
    await this.db
      .insertInto('settings')
      .values(row)
      .onConflict((oc) =>
        oc.column('key').doUpdateSet({ value_json: row.value_json, updated_at: row.updated_at }),
      )
      .execute();
  }
}
