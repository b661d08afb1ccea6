import type { Kysely } from 'kysely';
import type { Clock } from '../core/index.js';
import { num, readJson, writeJson } from './json-column.js';
import type { ItemRecord, ItemSource, ItemRef, ItemState, PolicyRef, VaultRef } from './records.js';
import { newResourceId } from './resource-id.js';
import type { CatalogDatabase, ItemRow, ItemUpdate } from './schema.js';

/** What a new item row needs. */
export type NewItem = ItemSource & {
  readonly name: string;
  readonly vaultId: VaultRef;
  readonly policyId: PolicyRef;
  readonly nextRunAt: number | null;
};

/** Fields of an item that use cases change. */
export interface ItemChange {
  readonly policyId?: PolicyRef | null;
  readonly state?: ItemState;
  readonly nextRunAt?: number | null;
  readonly deletedAt?: number | null;
  readonly purgeAt?: number | null;
  readonly lastBackupAt?: number | null;
  readonly lastSuccessAt?: number | null;
}

/** Protected items by name and id. */
export class ItemStore {
  constructor(
    private readonly db: Kysely<CatalogDatabase>,
    private readonly clock: Clock,
  ) {}

  /** Adds a protected item. */
  async create(item: NewItem): Promise<ItemRecord> {
    const now = this.clock.now();
    const row: ItemRow = {
      id: newResourceId<ItemRef>('itm'),
      name: item.name,
      workload: item.workload,
      source_json: writeJson(item.source),
      vault_id: item.vaultId,
      policy_id: item.policyId,
      state: 'protected',
      next_run_at: item.nextRunAt,
      deleted_at: null,
      purge_at: null,
      last_backup_at: null,
      last_success_at: null,
      created_at: now,
      updated_at: now,
    };
    await this.db.insertInto('items').values(row).execute();
    return toItem(row);
  }

  /** The item with this name, or undefined. */
  async byName(name: string): Promise<ItemRecord | undefined> {
    const row = await this.db
      .selectFrom('items')
      .selectAll()
      .where('name', '=', name)
      .executeTakeFirst();
    return row && toItem(row);
  }

  /** The item with this id, or undefined. */
  async byId(id: string): Promise<ItemRecord | undefined> {
    const row = await this.db
      .selectFrom('items')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row && toItem(row);
  }

  /** Items, optionally only those of one vault or policy, by name. */
  async list(filter: { vaultId?: VaultRef; policyId?: PolicyRef } = {}): Promise<ItemRecord[]> {
    let query = this.db.selectFrom('items').selectAll();
    if (filter.vaultId !== undefined) query = query.where('vault_id', '=', filter.vaultId);
    if (filter.policyId !== undefined) query = query.where('policy_id', '=', filter.policyId);
    const rows = await query.orderBy('name').execute();
    return rows.map(toItem);
  }

  /** Protected items whose next scheduled run is due at `now`. */
  async due(now: number): Promise<ItemRecord[]> {
    const rows = await this.db
      .selectFrom('items')
      .selectAll()
      .where('state', '=', 'protected')
      .where('next_run_at', '<=', now)
      .orderBy('next_run_at')
      .execute();
    return rows.map(toItem);
  }

  /** Soft-deleted items whose purge date has come. */
  async purgeDue(now: number): Promise<ItemRecord[]> {
    const rows = await this.db
      .selectFrom('items')
      .selectAll()
      .where('state', '=', 'soft_deleted')
      .where('purge_at', '<=', now)
      .execute();
    return rows.map(toItem);
  }

  /** Changes the given fields. */
  async update(id: ItemRef, change: ItemChange): Promise<void> {
    const set: ItemUpdate = { updated_at: this.clock.now() };
    if (change.policyId !== undefined) set.policy_id = change.policyId;
    if (change.state !== undefined) set.state = change.state;
    if (change.nextRunAt !== undefined) set.next_run_at = change.nextRunAt;
    if (change.deletedAt !== undefined) set.deleted_at = change.deletedAt;
    if (change.purgeAt !== undefined) set.purge_at = change.purgeAt;
    if (change.lastBackupAt !== undefined) set.last_backup_at = change.lastBackupAt;
    if (change.lastSuccessAt !== undefined) set.last_success_at = change.lastSuccessAt;
    await this.db.updateTable('items').set(set).where('id', '=', id).execute();
  }

  /** Removes an item row; its points must be gone. */
  async delete(id: ItemRef): Promise<void> {
    await this.db.deleteFrom('items').where('id', '=', id).execute();
  }
}

function toItem(row: ItemRow): ItemRecord {
  return {
    id: row.id as ItemRef,
    name: row.name,
    ...sourceOf(row),
    vaultId: row.vault_id as VaultRef,
    policyId: row.policy_id as PolicyRef | null,
    state: row.state as ItemState,
    nextRunAt: num(row.next_run_at),
    deletedAt: num(row.deleted_at),
    purgeAt: num(row.purge_at),
    lastBackupAt: num(row.last_backup_at),
    lastSuccessAt: num(row.last_success_at),
    createdAt: num(row.created_at),
    updatedAt: num(row.updated_at),
  };
}

/** The workload and its source, as the row stores them. */
function sourceOf(row: ItemRow): ItemSource {
  const source: unknown = readJson(row.source_json, 'items.source_json');
  return row.workload === 'machine'
    ? { workload: 'machine', source: source as SourceOf<'machine'> }
    : { workload: 'files', source: source as SourceOf<'files'> };
}

type SourceOf<W extends ItemSource['workload']> = Extract<ItemSource, { workload: W }>['source'];
