import type { Generated, Insertable, Selectable, Updateable } from 'kysely';

// Column conventions, chosen so the same queries run on SQLite and PostgreSQL: times are epoch
// milliseconds in `bigint` columns, booleans are 0/1 integers, structured values are JSON text
// (`*_json`) that the stores parse and validate, never SQL-specific JSON functions.

/** `tokens`: API bearer tokens, stored as SHA-256 hashes only. */
export interface TokenTable {
  id: string;
  name: string;
  hash: string;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
  /** `admin` or `agent` (see TOKEN_SCOPES). */
  scope: string;
  /** The one vault an agent token may add to; null for admin tokens. */
  vault_id: string | null;
}

/** `vaults`: named vaults, where they live, and their settings. */
export interface VaultTable {
  id: string;
  name: string;
  location: string;
  /** The key file the server opens the vault with (its own key slot), inside the data dir. */
  key_file: string;
  /** The vault's own id (from its marker), to notice a location that changed vaults. */
  vault_uid: string;
  redundancy: string;
  /** GRS: where every object is copied to, asynchronously. */
  secondary_location: string | null;
  /** GRS: what the last replication run found (see `ReplicationState`). */
  replication_json: string;
  /** `disabled`, `enabled` (reversible) or `locked` (for good). */
  immutability: string;
  soft_delete_state: string;
  soft_delete_days: number;
  /** Cached usage (see `VaultUsage`), refreshed by the jobs that change the vault. */
  usage_json: string;
  created_at: number;
  updated_at: number;
}

/** `policies`: schedules and retention rules (a `PolicySpec` as JSON). */
export interface PolicyTable {
  id: string;
  name: string;
  spec_json: string;
  created_at: number;
  updated_at: number;
}

/** `items`: protected items. */
export interface ItemTable {
  id: string;
  name: string;
  workload: string;
  source_json: string;
  vault_id: string;
  policy_id: string | null;
  state: string;
  next_run_at: number | null;
  deleted_at: number | null;
  purge_at: number | null;
  last_backup_at: number | null;
  last_success_at: number | null;
  created_at: number;
  updated_at: number;
}

/** `points`: recovery points, one row per point whatever tiers hold it. */
export interface PointTable {
  id: string;
  item_id: string;
  vault_id: string;
  time: number;
  /** Id of the point in the local snapshot store (tier `snapshot`), while it is kept there. */
  snapshot_ref: string | null;
  /** Id of the point in the vault (tier `vault`). */
  vault_ref: string | null;
  consistency: string;
  files: number;
  bytes: number;
  stored_bytes: number;
  expires_at: number | null;
  snapshot_expires_at: number | null;
  job_id: string | null;
  created_at: number;
}

/** `jobs`: every backup, restore, retention and verify run. */
export interface JobTable {
  id: string;
  type: string;
  state: string;
  trigger: string;
  item_id: string | null;
  vault_id: string | null;
  params_json: string;
  /** Phases with their state and progress; also the checkpoint a retry resumes from. */
  phases_json: string;
  result_json: string | null;
  errors_json: string;
  attempts_json: string;
  retry_count: number;
  max_retries: number;
  run_after: number;
  cancel_requested: number;
  scheduled_for: number | null;
  created_at: number;
  started_at: number | null;
  ended_at: number | null;
  updated_at: number;
}

/** `settings`: server-wide settings by key (notifications, retry policy). */
export interface SettingTable {
  key: string;
  value_json: string;
  updated_at: number;
}

/** `events`: the audit trail of changes made through the API. */
export interface EventTable {
  seq: Generated<number>;
  time: number;
  actor: string;
  action: string;
  target: string;
  details_json: string;
}

/** `disk_snapshots`: named snapshots of one disk, points of their own in a vault. */
export interface DiskSnapshotTable {
  id: string;
  name: string;
  vault_id: string;
  disk_path: string;
  vault_ref: string;
  size: number;
  stored_bytes: number;
  created_at: number;
  expires_at: number | null;
}

/** The whole catalog schema, as Kysely sees it. */
export interface CatalogDatabase {
  tokens: TokenTable;
  vaults: VaultTable;
  policies: PolicyTable;
  items: ItemTable;
  points: PointTable;
  jobs: JobTable;
  settings: SettingTable;
  events: EventTable;
  disk_snapshots: DiskSnapshotTable;
}

export type TokenRow = Selectable<TokenTable>;
export type DiskSnapshotRow = Selectable<DiskSnapshotTable>;
export type VaultRow = Selectable<VaultTable>;
export type PolicyRow = Selectable<PolicyTable>;
export type ItemRow = Selectable<ItemTable>;
export type PointRow = Selectable<PointTable>;
export type JobRow = Selectable<JobTable>;
export type NewJobRow = Insertable<JobTable>;
export type JobUpdate = Updateable<JobTable>;
export type ItemUpdate = Updateable<ItemTable>;
export type VaultUpdate = Updateable<VaultTable>;
export type PointUpdate = Updateable<PointTable>;
