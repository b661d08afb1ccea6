import type { Kysely } from 'kysely';
import type { Clock } from '../core/index.js';
import { num, readJson, writeJson } from './json-column.js';
import type { PolicyRecord, PolicyRef } from './records.js';
import { newResourceId } from './resource-id.js';
import type { CatalogDatabase, PolicyRow } from './schema.js';

/** Policies by name and id. The spec is stored as given; its owner validates it. */
export class PolicyStore {
  constructor(
    private readonly db: Kysely<CatalogDatabase>,
    private readonly clock: Clock,
  ) {}

  /** Adds a policy. */
  async create(name: string, spec: unknown): Promise<PolicyRecord> {
    const now = this.clock.now();
    const row: PolicyRow = {
      id: newResourceId<PolicyRef>('pol'),
      name,
      spec_json: writeJson(spec),
      created_at: now,
      updated_at: now,
    };
    await this.db.insertInto('policies').values(row).execute();
    return toPolicy(row);
  }

  /** The policy with this name, or undefined. */
  async byName(name: string): Promise<PolicyRecord | undefined> {
    const row = await this.db
      .selectFrom('policies')
      .selectAll()
      .where('name', '=', name)
      .executeTakeFirst();
    return row && toPolicy(row);
  }

  /** The policy with this id, or undefined. */
  async byId(id: string): Promise<PolicyRecord | undefined> {
    const row = await this.db
      .selectFrom('policies')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row && toPolicy(row);
  }

  /** All policies by name. */
  async list(): Promise<PolicyRecord[]> {
    const rows = await this.db.selectFrom('policies').selectAll().orderBy('name').execute();
    return rows.map(toPolicy);
  }

  /** Replaces a policy's spec. */
  async update(id: PolicyRef, spec: unknown): Promise<void> {
    await this.db
      .updateTable('policies')
      .set({ spec_json: writeJson(spec), updated_at: this.clock.now() })
      .where('id', '=', id)
      .execute();
  }

  /** Removes a policy row. */
  async delete(id: PolicyRef): Promise<void> {
    await this.db.deleteFrom('policies').where('id', '=', id).execute();
  }
}

function toPolicy(row: PolicyRow): PolicyRecord {
  return {
    id: row.id as PolicyRef,
    name: row.name,
    spec: readJson<unknown>(row.spec_json, 'policies.spec_json'),
    createdAt: num(row.created_at),
    updatedAt: num(row.updated_at),
  };
}
