import type { Kysely } from 'kysely';
import { num } from './json-column.js';
import type { DiskSnapshotRecord, DiskSnapshotRef, VaultRef } from './records.js';
import { newResourceId } from './resource-id.js';
import type { CatalogDatabase, DiskSnapshotRow } from './schema.js';

/** What a new disk snapshot row needs. */
export type NewDiskSnapshot = Omit<DiskSnapshotRecord, 'id'>;

/** Disk snapshots by name, vault and expiry. */
export class DiskSnapshotStore {
  constructor(private readonly db: Kysely<CatalogDatabase>) {}

  async create(snapshot: NewDiskSnapshot): Promise<DiskSnapshotRecord> {
    const row: DiskSnapshotRow = {
      id: newResourceId<DiskSnapshotRef>('dsn'),
      name: snapshot.name,
      vault_id: snapshot.vaultId,
      disk_path: snapshot.diskPath,
      vault_ref: snapshot.vaultRef,
      size: snapshot.size,
      stored_bytes: snapshot.storedBytes,
      created_at: snapshot.createdAt,
      expires_at: snapshot.expiresAt,
    };
    await this.db.insertInto('disk_snapshots').values(row).execute();
    return toSnapshot(row);
  }

  async byName(name: string): Promise<DiskSnapshotRecord | undefined> {
    const row = await this.db
      .selectFrom('disk_snapshots')
      .selectAll()
      .where('name', '=', name)
      .executeTakeFirst();
    return row && toSnapshot(row);
  }

  /** Every snapshot, oldest first. */
  async list(): Promise<DiskSnapshotRecord[]> {
    const rows = await this.db
      .selectFrom('disk_snapshots')
      .selectAll()
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    return rows.map(toSnapshot);
  }

  /** Snapshots in a vault whose expiry has come. */
  async expired(vaultId: VaultRef, now: number): Promise<DiskSnapshotRecord[]> {
    const rows = await this.db
      .selectFrom('disk_snapshots')
      .selectAll()
      .where('vault_id', '=', vaultId)
      .where('expires_at', 'is not', null)
      .where('expires_at', '<=', now)
      .execute();
    return rows.map(toSnapshot);
  }

  async update(id: DiskSnapshotRef, change: { expiresAt: number | null }): Promise<void> {
    await this.db
      .updateTable('disk_snapshots')
      .set({ expires_at: change.expiresAt })
      .where('id', '=', id)
      .execute();
  }

  async delete(id: DiskSnapshotRef): Promise<void> {
    await this.db.deleteFrom('disk_snapshots').where('id', '=', id).execute();
  }
}

function toSnapshot(row: DiskSnapshotRow): DiskSnapshotRecord {
  return {
    id: row.id as DiskSnapshotRef,
    name: row.name,
    vaultId: row.vault_id as VaultRef,
    diskPath: row.disk_path,
    vaultRef: row.vault_ref,
    size: Number(row.size),
    storedBytes: Number(row.stored_bytes),
    createdAt: Number(row.created_at),
    expiresAt: num(row.expires_at),
  };
}
