import Database from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect, type Dialect } from 'kysely';
import { HoldfastError, type Clock } from '../core/index.js';
import { catalogMigrationProvider } from './migrations.js';
import type { CatalogDatabase } from './schema.js';
import { EventStore } from './event-store.js';
import { ItemStore } from './item-store.js';
import { JobStore } from './job-store.js';
import { PointStore } from './point-store.js';
import { PolicyStore } from './policy-store.js';
import { SettingStore } from './setting-store.js';
import { TokenStore } from './token-store.js';
import { DiskSnapshotStore } from './disk-snapshot-store.js';
import { VaultStore } from './vault-store.js';

/** Where the catalog lives: an SQLite file (the embedded default) or any Kysely dialect. */
export type CatalogTarget =
  | { readonly kind: 'sqlite'; readonly path: string }
  | { readonly kind: 'dialect'; readonly dialect: Dialect };

/**
 * The metadata database: vaults, policies, items, points, jobs, tokens, settings. Every query
 * goes through Kysely with portable SQL, so PostgreSQL can replace SQLite without touching the
 * services. The vault stays the source of truth for backup data; this caches what it holds.
 */
export class Catalog {
  readonly tokens: TokenStore;
  readonly vaults: VaultStore;
  readonly policies: PolicyStore;
  readonly items: ItemStore;
  readonly points: PointStore;
  readonly jobs: JobStore;
  readonly settings: SettingStore;
  readonly events: EventStore;
  readonly diskSnapshots: DiskSnapshotStore;

  private constructor(
    readonly db: Kysely<CatalogDatabase>,
    private readonly clock: Clock,
  ) {
    this.tokens = new TokenStore(db, clock);
    this.vaults = new VaultStore(db, clock);
    this.policies = new PolicyStore(db, clock);
    this.items = new ItemStore(db, clock);
    this.points = new PointStore(db);
    this.jobs = new JobStore(db, clock);
    this.settings = new SettingStore(db, clock);
    this.events = new EventStore(db);
    this.diskSnapshots = new DiskSnapshotStore(db);
  }

  /** Opens (creating if needed) a catalog and brings its schema up to date. */
  static async open(target: CatalogTarget, clock: Clock): Promise<Catalog> {
    const db = new Kysely<CatalogDatabase>({ dialect: dialectFor(target) });
    const catalog = new Catalog(db, clock);
    try {
      await catalog.migrate();
    } catch (error) {
      await db.destroy();
      throw error;
    }
    return catalog;
  }

  /** Runs every migration not yet applied, in order. */
  private async migrate(): Promise<void> {
    const migrator = new Migrator({ db: this.db, provider: catalogMigrationProvider });
    const { error, results } = await migrator.migrateToLatest();
    if (error !== undefined) {
      const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
      throw new HoldfastError('INTERNAL', `Catalog migration ${failed} failed.`, { cause: error });
    }
  }

  /** Runs `fn` in one transaction, with stores bound to it. */
  async transaction<T>(fn: (catalog: Catalog) => Promise<T>): Promise<T> {
    return this.db.transaction().execute((trx) => fn(new Catalog(trx, this.clock)));
  }

  /** Closes the database. */
  async close(): Promise<void> {
    await this.db.destroy();
  }
}

function dialectFor(target: CatalogTarget): Dialect {
  if (target.kind === 'dialect') return target.dialect;
  const database = new Database(target.path);
  // WAL lets the API read while a job writes; the busy timeout absorbs short write overlaps;
  // foreign keys are off by default in SQLite and the schema relies on them.
  database.pragma('journal_mode = WAL');
  database.pragma('busy_timeout = 5000');
  database.pragma('foreign_keys = ON');
  database.pragma('synchronous = NORMAL');
  return new SqliteDialect({ database });
}
