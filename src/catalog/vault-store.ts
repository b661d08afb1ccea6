import type { Kysely } from 'kysely';
import type { Clock } from '../core/index.js';
import { num, readJson, writeJson } from './json-column.js';
import type {
  ImmutabilityState,
  Redundancy,
  ReplicationState,
  SoftDeleteState,
  VaultRecord,
  VaultRef,
  VaultUsage,
} from './records.js';
import { newResourceId } from './resource-id.js';
import type { CatalogDatabase, VaultRow } from './schema.js';

/** What a new vault row needs. */
export interface NewVault {
  readonly name: string;
  readonly location: string;
  readonly keyFile: string;
  readonly vaultUid: string;
  readonly redundancy: Redundancy;
  readonly secondaryLocation?: string | null;
  readonly softDelete: { readonly state: SoftDeleteState; readonly days: number };
}

/** Usage of a vault nothing has measured yet. */
export const EMPTY_USAGE: VaultUsage = {
  protectedBytes: 0,
  storedBytes: 0,
  dedupRatio: 1,
  points: 0,
  refreshedAt: null,
};

/** Vaults by name and id. */
export class VaultStore {
  constructor(
    private readonly db: Kysely<CatalogDatabase>,
    private readonly clock: Clock,
  ) {}

  /** Adds a vault; the caller has checked the name is free. */
  async create(vault: NewVault): Promise<VaultRecord> {
    const now = this.clock.now();
    const row: VaultRow = {
      id: newResourceId<VaultRef>('vlt'),
      name: vault.name,
      location: vault.location,
      key_file: vault.keyFile,
      vault_uid: vault.vaultUid,
      redundancy: vault.redundancy,
      secondary_location: vault.secondaryLocation ?? null,
      replication_json: '{}',
      immutability: 'disabled',
      soft_delete_state: vault.softDelete.state,
      soft_delete_days: vault.softDelete.days,
      usage_json: writeJson(EMPTY_USAGE),
      created_at: now,
      updated_at: now,
    };
    await this.db.insertInto('vaults').values(row).execute();
    return toVault(row);
  }

  /** The vault with this name, or undefined. */
  async byName(name: string): Promise<VaultRecord | undefined> {
    const row = await this.db
      .selectFrom('vaults')
      .selectAll()
      .where('name', '=', name)
      .executeTakeFirst();
    return row && toVault(row);
  }

  /** The vault with this id, or undefined. */
  async byId(id: string): Promise<VaultRecord | undefined> {
    const row = await this.db
      .selectFrom('vaults')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row && toVault(row);
  }

  /** All vaults by name. */
  async list(): Promise<VaultRecord[]> {
    const rows = await this.db.selectFrom('vaults').selectAll().orderBy('name').execute();
    return rows.map(toVault);
  }

  /** Changes the soft-delete settings. */
  async setSoftDelete(id: VaultRef, state: SoftDeleteState, days: number): Promise<void> {
    await this.db
      .updateTable('vaults')
      .set({ soft_delete_state: state, soft_delete_days: days, updated_at: this.clock.now() })
      .where('id', '=', id)
      .execute();
  }

  /** Stores freshly measured usage. */
  async setUsage(id: VaultRef, usage: VaultUsage): Promise<void> {
    await this.db
      .updateTable('vaults')
      .set({ usage_json: writeJson(usage), updated_at: this.clock.now() })
      .where('id', '=', id)
      .execute();
  }

  /** Sets the immutability state (the caller has checked the transition). */
  async setImmutability(id: VaultRef, state: ImmutabilityState): Promise<void> {
    await this.db
      .updateTable('vaults')
      .set({ immutability: state, updated_at: this.clock.now() })
      .where('id', '=', id)
      .execute();
  }

  /**
   * Merges what a replication run, a lag measurement or a check found into the stored state;
   * fields not given keep their value (several jobs report on one vault at once).
   */
  async setReplication(id: VaultRef, patch: ReplicationState): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const row = await trx
        .selectFrom('vaults')
        .select('replication_json')
        .where('id', '=', id)
        .executeTakeFirst();
      if (row === undefined) return;
      const current = readJson<ReplicationState>(row.replication_json, 'vaults.replication_json');
      await trx
        .updateTable('vaults')
        .set({
          replication_json: writeJson({ ...current, ...patch }),
          updated_at: this.clock.now(),
        })
        .where('id', '=', id)
        .execute();
    });
  }

  /** Sets redundancy and the secondary location. */
  async setRedundancy(
    id: VaultRef,
    redundancy: Redundancy,
    secondary: string | null,
  ): Promise<void> {
    await this.db
      .updateTable('vaults')
      .set({ redundancy, secondary_location: secondary, updated_at: this.clock.now() })
      .where('id', '=', id)
      .execute();
  }

  /** Swaps primary and secondary locations (a failover, or re-protection back). */
  async swapLocations(id: VaultRef, primary: string, secondary: string): Promise<void> {
    await this.db
      .updateTable('vaults')
      .set({ location: primary, secondary_location: secondary, updated_at: this.clock.now() })
      .where('id', '=', id)
      .execute();
  }

  /** Removes a vault row (not its data). */
  async delete(id: VaultRef): Promise<void> {
    await this.db.deleteFrom('vaults').where('id', '=', id).execute();
  }
}

function toVault(row: VaultRow): VaultRecord {
  return {
    id: row.id as VaultRef,
    name: row.name,
    location: row.location,
    keyFile: row.key_file,
    vaultUid: row.vault_uid,
    redundancy: row.redundancy as Redundancy,
    secondaryLocation: row.secondary_location,
    replication: readJson<ReplicationState>(row.replication_json, 'vaults.replication_json'),
    immutability: row.immutability as ImmutabilityState,
    softDelete: {
      state: row.soft_delete_state as SoftDeleteState,
      days: row.soft_delete_days,
    },
    usage: readJson<VaultUsage>(row.usage_json, 'vaults.usage_json'),
    createdAt: num(row.created_at),
    updatedAt: num(row.updated_at),
  };
}
