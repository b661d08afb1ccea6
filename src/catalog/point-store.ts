import type { Kysely } from 'kysely';
import { num } from './json-column.js';
import type { ItemRef, JobId, PointRecord, PointRef, VaultRef } from './records.js';
import { newResourceId } from './resource-id.js';
import type { CatalogDatabase, PointRow, PointUpdate } from './schema.js';

/** What a new point row needs. */
export type NewPoint = Omit<PointRecord, 'id'>;

/** Changes to a point's tiers and expiry. */
export interface PointChange {
  readonly snapshotRef?: string | null;
  readonly vaultRef?: string | null;
  readonly expiresAt?: number | null;
  readonly snapshotExpiresAt?: number | null;
  readonly storedBytes?: number;
}

/** Recovery points of items. */
export class PointStore {
  constructor(private readonly db: Kysely<CatalogDatabase>) {}

  /** Records a point. */
  async create(point: NewPoint): Promise<PointRecord> {
    const id = newResourceId<PointRef>('rp');
    const row: PointRow = {
      id,
      item_id: point.itemId,
      vault_id: point.vaultId,
      time: point.time,
      snapshot_ref: point.snapshotRef,
      vault_ref: point.vaultRef,
      consistency: point.consistency,
      files: point.files,
      bytes: point.bytes,
      stored_bytes: point.storedBytes,
      expires_at: point.expiresAt,
      snapshot_expires_at: point.snapshotExpiresAt,
      job_id: point.jobId,
      created_at: point.createdAt,
    };
    await this.db.insertInto('points').values(row).execute();
    return toPoint(row);
  }

  /** Points of an item, oldest first. */
  async forItem(itemId: ItemRef): Promise<PointRecord[]> {
    const rows = await this.db
      .selectFrom('points')
      .selectAll()
      .where('item_id', '=', itemId)
      .orderBy('time')
      .orderBy('id')
      .execute();
    return rows.map(toPoint);
  }

  /** Points of a vault, oldest first. */
  async forVault(vaultId: VaultRef): Promise<PointRecord[]> {
    const rows = await this.db
      .selectFrom('points')
      .selectAll()
      .where('vault_id', '=', vaultId)
      .orderBy('time')
      .execute();
    return rows.map(toPoint);
  }

  /** The point a job recorded, if it got that far (so a retried job never records two). */
  async byJob(jobId: JobId): Promise<PointRecord | undefined> {
    const row = await this.db
      .selectFrom('points')
      .selectAll()
      .where('job_id', '=', jobId)
      .executeTakeFirst();
    return row && toPoint(row);
  }

  /** The point of a vault recorded for the vault object `points/<vaultRef>`, if any. */
  async byVaultRef(vaultId: VaultRef, vaultRef: string): Promise<PointRecord | undefined> {
    const row = await this.db
      .selectFrom('points')
      .selectAll()
      .where('vault_id', '=', vaultId)
      .where('vault_ref', '=', vaultRef)
      .executeTakeFirst();
    return row && toPoint(row);
  }

  /** The point with this id, or undefined. */
  async byId(id: string): Promise<PointRecord | undefined> {
    const row = await this.db
      .selectFrom('points')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row && toPoint(row);
  }

  /** Changes tiers or expiry. */
  async update(id: PointRef, change: PointChange): Promise<void> {
    const set: PointUpdate = {};
    if (change.snapshotRef !== undefined) set.snapshot_ref = change.snapshotRef;
    if (change.vaultRef !== undefined) set.vault_ref = change.vaultRef;
    if (change.expiresAt !== undefined) set.expires_at = change.expiresAt;
    if (change.snapshotExpiresAt !== undefined) set.snapshot_expires_at = change.snapshotExpiresAt;
    if (change.storedBytes !== undefined) set.stored_bytes = change.storedBytes;
    if (Object.keys(set).length === 0) return;
    await this.db.updateTable('points').set(set).where('id', '=', id).execute();
  }

  /** Removes a point row (after its data is gone from every tier). */
  async delete(id: PointRef): Promise<void> {
    await this.db.deleteFrom('points').where('id', '=', id).execute();
  }

  /**
   * Points of a vault with an expiry (vault tier, or snapshot tier while held) at or before
   * `now`: what a retention run would look at.
   */
  async dueForRetention(vaultId: VaultRef, now: number): Promise<PointRecord[]> {
    const rows = await this.db
      .selectFrom('points')
      .selectAll()
      .where('vault_id', '=', vaultId)
      .where((eb) =>
        eb.or([
          eb('expires_at', '<=', now),
          eb.and([eb('snapshot_ref', 'is not', null), eb('snapshot_expires_at', '<=', now)]),
        ]),
      )
      .execute();
    return rows.map(toPoint);
  }

  /** The newest point of an item, if any. */
  async newest(itemId: ItemRef): Promise<PointRecord | undefined> {
    const row = await this.db
      .selectFrom('points')
      .selectAll()
      .where('item_id', '=', itemId)
      .orderBy('time', 'desc')
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row && toPoint(row);
  }

  /** Number of points per vault. */
  async countForVault(vaultId: VaultRef): Promise<number> {
    const row = await this.db
      .selectFrom('points')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('vault_id', '=', vaultId)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }
}

function toPoint(row: PointRow): PointRecord {
  return {
    id: row.id as PointRef,
    itemId: row.item_id as ItemRef,
    vaultId: row.vault_id as VaultRef,
    time: num(row.time),
    snapshotRef: row.snapshot_ref,
    vaultRef: row.vault_ref,
    consistency: row.consistency,
    files: num(row.files),
    bytes: num(row.bytes),
    storedBytes: num(row.stored_bytes),
    expiresAt: num(row.expires_at),
    snapshotExpiresAt: num(row.snapshot_expires_at),
    jobId: row.job_id as JobId | null,
    createdAt: num(row.created_at),
  };
}
