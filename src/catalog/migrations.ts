import { type Kysely, type Migration, type MigrationProvider } from 'kysely';

// Migrations are code, not files, so the built package carries them. Each is written with
// Kysely's schema builder and portable types only (text, integer, bigint), so PostgreSQL can
// run the same list. Never edit a released migration: add the next one.

const initial: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('tokens')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('hash', 'text', (c) => c.notNull().unique())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('last_used_at', 'bigint')
      .addColumn('revoked_at', 'bigint')
      .execute();
    await db.schema
      .createTable('vaults')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull().unique())
      .addColumn('location', 'text', (c) => c.notNull())
      .addColumn('key_file', 'text', (c) => c.notNull())
      .addColumn('vault_uid', 'text', (c) => c.notNull())
      .addColumn('redundancy', 'text', (c) => c.notNull())
      .addColumn('soft_delete_state', 'text', (c) => c.notNull())
      .addColumn('soft_delete_days', 'integer', (c) => c.notNull())
      .addColumn('usage_json', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('policies')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull().unique())
      .addColumn('spec_json', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('items')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull().unique())
      .addColumn('workload', 'text', (c) => c.notNull())
      .addColumn('source_json', 'text', (c) => c.notNull())
      .addColumn('vault_id', 'text', (c) => c.notNull().references('vaults.id'))
      .addColumn('policy_id', 'text', (c) => c.references('policies.id'))
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('next_run_at', 'bigint')
      .addColumn('deleted_at', 'bigint')
      .addColumn('purge_at', 'bigint')
      .addColumn('last_backup_at', 'bigint')
      .addColumn('last_success_at', 'bigint')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('points')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('item_id', 'text', (c) => c.notNull().references('items.id'))
      .addColumn('vault_id', 'text', (c) => c.notNull().references('vaults.id'))
      .addColumn('time', 'bigint', (c) => c.notNull())
      .addColumn('snapshot_ref', 'text')
      .addColumn('vault_ref', 'text')
      .addColumn('consistency', 'text', (c) => c.notNull())
      .addColumn('files', 'bigint', (c) => c.notNull())
      .addColumn('bytes', 'bigint', (c) => c.notNull())
      .addColumn('stored_bytes', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint')
      .addColumn('snapshot_expires_at', 'bigint')
      .addColumn('job_id', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('points_by_item')
      .on('points')
      .columns(['item_id', 'time'])
      .execute();
    await db.schema
      .createTable('jobs')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('type', 'text', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('trigger', 'text', (c) => c.notNull())
      .addColumn('item_id', 'text')
      .addColumn('vault_id', 'text')
      .addColumn('params_json', 'text', (c) => c.notNull())
      .addColumn('phases_json', 'text', (c) => c.notNull())
      .addColumn('result_json', 'text')
      .addColumn('errors_json', 'text', (c) => c.notNull())
      .addColumn('attempts_json', 'text', (c) => c.notNull())
      .addColumn('retry_count', 'integer', (c) => c.notNull())
      .addColumn('max_retries', 'integer', (c) => c.notNull())
      .addColumn('run_after', 'bigint', (c) => c.notNull())
      .addColumn('cancel_requested', 'integer', (c) => c.notNull())
      .addColumn('scheduled_for', 'bigint')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('started_at', 'bigint')
      .addColumn('ended_at', 'bigint')
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('jobs_by_state')
      .on('jobs')
      .columns(['state', 'run_after'])
      .execute();
    await db.schema
      .createIndex('jobs_by_item')
      .on('jobs')
      .columns(['item_id', 'created_at'])
      .execute();
    await db.schema
      .createTable('settings')
      .addColumn('key', 'text', (c) => c.primaryKey())
      .addColumn('value_json', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('events')
      .addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement())
      .addColumn('time', 'bigint', (c) => c.notNull())
      .addColumn('actor', 'text', (c) => c.notNull())
      .addColumn('action', 'text', (c) => c.notNull())
      .addColumn('target', 'text', (c) => c.notNull())
      .addColumn('details_json', 'text', (c) => c.notNull())
      .execute();
  },
};

const geoRedundancy: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('vaults').addColumn('secondary_location', 'text').execute();
    await db.schema
      .alterTable('vaults')
      .addColumn('replication_json', 'text', (c) => c.notNull().defaultTo('{}'))
      .execute();
  },
};

const immutability: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .alterTable('vaults')
      .addColumn('immutability', 'text', (c) => c.notNull().defaultTo('disabled'))
      .execute();
  },
};

/** Agent tokens: limited to adding to one vault (docs/agents.md). Existing tokens stay admin. */
const agentTokens: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .alterTable('tokens')
      .addColumn('scope', 'text', (c) => c.notNull().defaultTo('admin'))
      .execute();
    await db.schema.alterTable('tokens').addColumn('vault_id', 'text').execute();
  },
};

/** Disk snapshots: named, incremental snapshots of one disk, each with its own expiry. */
const diskSnapshots: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('disk_snapshots')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull().unique())
      .addColumn('vault_id', 'text', (c) => c.notNull())
      .addColumn('disk_path', 'text', (c) => c.notNull())
      .addColumn('vault_ref', 'text', (c) => c.notNull())
      .addColumn('size', 'bigint', (c) => c.notNull())
      .addColumn('stored_bytes', 'bigint', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint')
      .execute();
  },
};

/** Every catalog migration, by name; names sort in the order they run. */
export const CATALOG_MIGRATIONS: Readonly<Record<string, Migration>> = {
  '0001-initial': initial,
  '0002-geo-redundancy': geoRedundancy,
  '0003-immutability': immutability,
  '0004-agent-tokens': agentTokens,
  '0005-disk-snapshots': diskSnapshots,
};

/** Hands {@link CATALOG_MIGRATIONS} to Kysely's migrator. */
export const catalogMigrationProvider: MigrationProvider = {
  getMigrations: () => Promise.resolve({ ...CATALOG_MIGRATIONS }),
};
