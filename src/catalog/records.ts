import type { Brand } from '../core/index.js';
import type { MachineSource } from '../workloads/index.js';

/** Catalog id of a vault (`vlt_…`). */
export type VaultRef = Brand<string, 'VaultRef'>;
/** Catalog id of a policy (`pol_…`). */
export type PolicyRef = Brand<string, 'PolicyRef'>;
/** Catalog id of a protected item (`itm_…`). */
export type ItemRef = Brand<string, 'ItemRef'>;
/** Catalog id of a recovery point (`rp_…`); the tiers hold it under their own ids. */
export type PointRef = Brand<string, 'PointRef'>;
/** Id of a job (`job_…`). */
export type JobId = Brand<string, 'JobId'>;
/** Id of an API token (`tok_…`). */
export type TokenRef = Brand<string, 'TokenRef'>;

/** Soft-delete settings of a vault; `always_on` cannot be turned off again. */
export const SOFT_DELETE_STATES = ['on', 'off', 'always_on'] as const;
export type SoftDeleteState = (typeof SOFT_DELETE_STATES)[number];

/**
 * Vault redundancy: `lrs`, one location; `grs`, every object also copied, asynchronously, to a
 * secondary location (docs/redundancy.md).
 */
export const REDUNDANCIES = ['lrs', 'grs'] as const;
export type Redundancy = (typeof REDUNDANCIES)[number];

/** What a vault holds, cached by the jobs that change it. */
export interface VaultUsage {
  /** Logical bytes of the newest point of each item: what is protected. */
  readonly protectedBytes: number;
  /** Bytes of pack files in the vault: what is stored. */
  readonly storedBytes: number;
  /** Logical bytes of all points held, over stored bytes. */
  readonly dedupRatio: number;
  readonly points: number;
  readonly refreshedAt: number | null;
}

/**
 * Vault immutability (docs/immutability.md): `enabled` can be turned off again, `locked`
 * never. While not `disabled`, nothing can be deleted before its expiry and retention only
 * lengthened.
 */
export const IMMUTABILITY_STATES = ['disabled', 'enabled', 'locked'] as const;
export type ImmutabilityState = (typeof IMMUTABILITY_STATES)[number];

/** What replication to the secondary last found, for lag reports and alerts. */
export interface ReplicationState {
  /** Objects and bytes of the primary not yet on the secondary. */
  readonly objectsBehind?: number;
  readonly bytesBehind?: number;
  /** Since when the secondary has been behind (null when it was caught up). */
  readonly behindSince?: number | null;
  readonly lastReplicatedAt?: number | null;
  readonly lastVerifiedAt?: number | null;
  /** Set by a failover: the location that was primary before. */
  readonly failedOverFrom?: string | null;
  /** When the lag alert was last sent (once per stretch of lag). */
  readonly lagAlertedAt?: number | null;
  /** After a failover, until re-protection: nothing is copied. */
  readonly paused?: boolean;
}

/** A vault as the catalog knows it. */
export interface VaultRecord {
  readonly id: VaultRef;
  readonly name: string;
  readonly location: string;
  readonly keyFile: string;
  readonly vaultUid: string;
  readonly redundancy: Redundancy;
  readonly secondaryLocation: string | null;
  readonly replication: ReplicationState;
  readonly immutability: ImmutabilityState;
  readonly softDelete: { readonly state: SoftDeleteState; readonly days: number };
  readonly usage: VaultUsage;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** A policy; `spec` is validated by the jobs layer's policy schema. */
export interface PolicyRecord {
  readonly id: PolicyRef;
  readonly name: string;
  readonly spec: unknown;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** Protection states of an item (DESIGN.md §2). */
export const ITEM_STATES = ['protected', 'stopped', 'soft_deleted'] as const;
export type ItemState = (typeof ITEM_STATES)[number];

/** Kinds of protected things; more arrive with their workloads. */
export const WORKLOADS = ['files', 'machine'] as const;
export type Workload = (typeof WORKLOADS)[number];

/** What a files item backs up. */
export interface FilesSource {
  readonly paths: readonly string[];
  readonly excludes: readonly string[];
  readonly oneFileSystem: boolean;
  /**
   * Backed up by an agent on its own host (docs/agents.md), not by the server: the server
   * schedules no backups for it but records the points the agent adds and keeps its retention.
   */
  readonly agent?: boolean;
}

/** What an item protects: files (and directories), or a machine's disks (docs/disks.md). */
export type ItemSource =
  | { readonly workload: 'files'; readonly source: FilesSource }
  | { readonly workload: 'machine'; readonly source: MachineSource };

/** A protected item. */
export type ItemRecord = ItemSource & ItemFields;

/** True for a files item an agent backs up on its own host (docs/agents.md). */
export function isAgentItem(item: ItemSource): boolean {
  return item.workload === 'files' && item.source.agent === true;
}

/** The fields every item has, whatever it protects. */
export interface ItemFields {
  readonly id: ItemRef;
  readonly name: string;
  readonly vaultId: VaultRef;
  readonly policyId: PolicyRef | null;
  readonly state: ItemState;
  readonly nextRunAt: number | null;
  readonly deletedAt: number | null;
  readonly purgeAt: number | null;
  readonly lastBackupAt: number | null;
  readonly lastSuccessAt: number | null;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** A recovery point; its tiers are the refs that are set. */
export interface PointRecord {
  readonly id: PointRef;
  readonly itemId: ItemRef;
  readonly vaultId: VaultRef;
  readonly time: number;
  readonly snapshotRef: string | null;
  readonly vaultRef: string | null;
  readonly consistency: string;
  readonly files: number;
  readonly bytes: number;
  readonly storedBytes: number;
  readonly expiresAt: number | null;
  readonly snapshotExpiresAt: number | null;
  readonly jobId: JobId | null;
  readonly createdAt: number;
}

/** Kinds of jobs. */
export const JOB_TYPES = ['backup', 'restore', 'retention', 'verify', 'replicate'] as const;
export type JobType = (typeof JOB_TYPES)[number];

/**
 * Job states (docs/jobs.md). `waiting_retry`: a failed or interrupted attempt with retries
 * left, to run again at `runAfter`.
 */
export const JOB_STATES = [
  'queued',
  'running',
  'waiting_retry',
  'completed',
  'completed_with_warnings',
  'failed',
  'cancelled',
] as const;
export type JobState = (typeof JOB_STATES)[number];

/** States a job never leaves. */
export const FINAL_JOB_STATES: ReadonlySet<JobState> = new Set([
  'completed',
  'completed_with_warnings',
  'failed',
  'cancelled',
]);

/** Why a job exists. */
export const JOB_TRIGGERS = ['schedule', 'manual', 'system'] as const;
export type JobTrigger = (typeof JOB_TRIGGERS)[number];

/** One phase of a job, with its progress; `checkpoint` is what a retry resumes from. */
export interface JobPhase {
  readonly name: string;
  readonly state: 'pending' | 'running' | 'done' | 'failed' | 'skipped';
  readonly startedAt?: number;
  readonly endedAt?: number;
  readonly progress?: JobProgress;
  readonly checkpoint?: Record<string, unknown>;
}

/** Progress counters of a running phase. */
export interface JobProgress {
  readonly bytes: number;
  readonly items: number;
  readonly totalBytes?: number;
  readonly totalItems?: number;
  readonly bytesPerSecond?: number;
  readonly etaSeconds?: number;
}

/** One attempt that ended without finishing the job. */
export interface JobAttempt {
  readonly startedAt: number;
  readonly endedAt: number;
  readonly outcome: 'failed' | 'interrupted';
  readonly error: { readonly code: string; readonly message: string };
}

/** A per-item failure inside a job (an unreadable file, a file not restored). */
export interface JobItemError {
  readonly path: string;
  readonly message: string;
}

/** A job. */
export interface JobRecord {
  readonly id: JobId;
  readonly type: JobType;
  readonly state: JobState;
  readonly trigger: JobTrigger;
  readonly itemId: ItemRef | null;
  readonly vaultId: VaultRef | null;
  readonly params: Record<string, unknown>;
  readonly phases: readonly JobPhase[];
  readonly result: Record<string, unknown> | null;
  readonly errors: readonly JobItemError[];
  readonly attempts: readonly JobAttempt[];
  readonly retryCount: number;
  readonly maxRetries: number;
  readonly runAfter: number;
  readonly cancelRequested: boolean;
  readonly scheduledFor: number | null;
  readonly createdAt: number;
  readonly startedAt: number | null;
  readonly endedAt: number | null;
  readonly updatedAt: number;
}

/**
 * What a token may do: `admin` everything; `agent` only read and add objects of one vault
 * through the server (docs/agents.md).
 */
export const TOKEN_SCOPES = ['admin', 'agent'] as const;
export type TokenScope = (typeof TOKEN_SCOPES)[number];

/** An API token, without its secret. */
export interface TokenRecord {
  readonly id: TokenRef;
  readonly name: string;
  readonly scope: TokenScope;
  /** The vault an agent token is for; null for admin tokens. */
  readonly vaultId: VaultRef | null;
  readonly createdAt: number;
  readonly lastUsedAt: number | null;
  readonly revokedAt: number | null;
}

/** Catalog id of a disk snapshot (`dsn_…`). */
export type DiskSnapshotRef = Brand<string, 'DiskSnapshotRef'>;

/** A named snapshot of one disk: a point of its own in a vault, with its own expiry. */
export interface DiskSnapshotRecord {
  readonly id: DiskSnapshotRef;
  readonly name: string;
  readonly vaultId: VaultRef;
  readonly diskPath: string;
  /** The point in the vault. */
  readonly vaultRef: string;
  readonly size: number;
  readonly storedBytes: number;
  readonly createdAt: number;
  /** Null: kept indefinitely. */
  readonly expiresAt: number | null;
}
