import { z } from 'zod';

// The shapes the REST API accepts and answers with. They live in the app layer so that the
// server validates with them and documents them (OpenAPI), and the CLI types its requests and
// reads its answers with the same definitions.

/** Names of vaults, policies, items and tokens: safe in URLs, paths and shells. */
export const NAME = z
  .string()
  .min(1)
  .max(63)
  .regex(
    /^[a-z0-9][a-z0-9._-]*$/i,
    'letters, digits, ".", "_" and "-", starting with a letter or digit',
  )
  .refine((name) => !name.includes('..'), 'must not contain ".."');

/** An absolute path on the server's host. */
export const ABSOLUTE_PATH = z
  .string()
  .min(1)
  .max(4096)
  .refine((p) => p.startsWith('/') && !p.includes('\0'), 'must be an absolute path');

/** Soft-delete settings as the API takes them. */
export const SOFT_DELETE_INPUT = z
  .object({
    state: z.enum(['on', 'off', 'always_on']).optional(),
    days: z.number().int().min(14).max(180).optional(),
  })
  .strict();

/** `POST /api/vaults`: a new vault, or an existing vault at `location` adopted by the server. */
export const CREATE_VAULT_INPUT = z
  .object({
    name: NAME,
    /** Default: `<data-dir>/vaults/<name>`. */
    location: z.string().min(1).max(4096).optional(),
    /** Unlocks the vault without the server (the disaster-recovery path). One of the two. */
    passphrase: z.string().min(8).max(1024).optional(),
    keyFile: ABSOLUTE_PATH.optional(),
    softDelete: SOFT_DELETE_INPUT.optional(),
    compressionLevel: z.number().int().min(1).max(19).optional(),
  })
  .strict()
  .refine((v) => (v.passphrase === undefined) !== (v.keyFile === undefined), {
    message: 'give exactly one of passphrase or keyFile',
    path: ['passphrase'],
  });
export type CreateVaultInput = z.infer<typeof CREATE_VAULT_INPUT>;

/** `PATCH /api/vaults/:name`. */
export const UPDATE_VAULT_INPUT = z.object({ softDelete: SOFT_DELETE_INPUT }).strict();
export type UpdateVaultInput = z.infer<typeof UPDATE_VAULT_INPUT>;

/**
 * A policy as the API takes it: `schedule` is the object form or the text form
 * (`daily 02:00`, `weekly mon,thu 22:00`, `every 4h from 08:00 for 24h`, or cron).
 */
export const POLICY_BODY = z
  .object({
    schedule: z.union([z.string().min(1).max(200), z.record(z.string(), z.unknown())]),
    timezone: z.string().min(1).max(64).optional(),
    snapshotDays: z.number().int().optional(),
    retention: z.record(z.string(), z.unknown()),
  })
  .strict();
export type PolicyBody = z.infer<typeof POLICY_BODY>;

/** `POST /api/policies`. */
export const CREATE_POLICY_INPUT = POLICY_BODY.extend({ name: NAME }).strict();
export type CreatePolicyInput = z.infer<typeof CREATE_POLICY_INPUT>;

/** `POST /api/items`: protect paths of this host into a vault with a policy. */
export const PROTECT_INPUT = z
  .object({
    name: NAME,
    workload: z.literal('files').optional(),
    paths: z.array(ABSOLUTE_PATH).min(1).max(64),
    excludes: z.array(z.string().min(1).max(1024)).max(1000).optional(),
    oneFileSystem: z.boolean().optional(),
    vault: NAME,
    policy: NAME,
  })
  .strict();
export type ProtectInput = z.infer<typeof PROTECT_INPUT>;

/** `PATCH /api/items/:name`: change policy. */
export const UPDATE_ITEM_INPUT = z.object({ policy: NAME }).strict();
export type UpdateItemInput = z.infer<typeof UPDATE_ITEM_INPUT>;

/** `POST /api/items/:name/stop`. */
export const STOP_ITEM_INPUT = z.object({ deleteData: z.boolean().optional() }).strict();
export type StopItemInput = z.infer<typeof STOP_ITEM_INPUT>;

/** `POST /api/items/:name/restore`. */
export const RESTORE_INPUT = z
  .object({
    point: z.string().min(1).max(80).default('latest'),
    target: ABSOLUTE_PATH,
    include: z.array(z.string().min(1).max(4096)).max(1000).optional(),
    exclude: z.array(z.string().min(1).max(4096)).max(1000).optional(),
    overwrite: z.enum(['never', 'if-changed', 'always']).optional(),
    verify: z.boolean().optional(),
    /** Which tier to read: the fastest that holds the point, unless told. */
    tier: z.enum(['auto', 'snapshot', 'vault']).optional(),
  })
  .strict();
export type RestoreInput = z.infer<typeof RESTORE_INPUT>;

/** `POST /api/tokens`. */
export const CREATE_TOKEN_INPUT = z.object({ name: NAME }).strict();

/** Query of `GET /api/jobs`. */
export const JOB_QUERY = z
  .object({
    item: NAME.optional(),
    state: z.string().max(200).optional(),
    type: z.string().max(200).optional(),
    limit: z.coerce.number().int().min(1).max(1000).optional(),
  })
  .strict();

/** A vault as the API shows it. */
export interface VaultView {
  readonly id: string;
  readonly name: string;
  readonly location: string;
  readonly redundancy: string;
  readonly softDelete: { readonly state: string; readonly days: number };
  readonly usage: {
    readonly protectedBytes: number;
    readonly storedBytes: number;
    readonly dedupRatio: number;
    readonly points: number;
    readonly refreshedAt: string | null;
  };
  readonly items: number;
  readonly createdAt: string;
}

/** A policy as the API shows it. */
export interface PolicyView {
  readonly id: string;
  readonly name: string;
  readonly schedule: unknown;
  /** The schedule in its text form. */
  readonly scheduleText: string;
  readonly timezone: string;
  readonly snapshotDays: number;
  readonly tier: 'standard' | 'enhanced';
  readonly retention: Record<string, number>;
  readonly items: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** A protected item as the API shows it. */
export interface ItemView {
  readonly id: string;
  readonly name: string;
  readonly workload: string;
  readonly paths: readonly string[];
  readonly excludes: readonly string[];
  readonly vault: string;
  readonly policy: string | null;
  /** `protected`, `stopped` (protection stopped, data kept) or `soft_deleted`. */
  readonly state: string;
  readonly nextRunAt: string | null;
  readonly lastBackupAt: string | null;
  readonly lastSuccessAt: string | null;
  readonly deletedAt: string | null;
  /** When soft-deleted data is purged for good. */
  readonly purgeAt: string | null;
  readonly points: number;
  readonly createdAt: string;
}

/** A recovery point as the API shows it. */
export interface PointView {
  readonly id: string;
  readonly item: string;
  readonly time: string;
  /** `snapshot`, `vault`, or both. */
  readonly tiers: ReadonlyArray<'snapshot' | 'vault'>;
  readonly consistency: string;
  readonly files: number;
  readonly bytes: number;
  readonly storedBytes: number;
  readonly expiresAt: string | null;
  readonly snapshotExpiresAt: string | null;
}

/** A job as the API shows it. */
export interface JobView {
  readonly id: string;
  readonly type: string;
  readonly state: string;
  readonly trigger: string;
  readonly item: string | null;
  readonly vault: string | null;
  readonly params: Record<string, unknown>;
  readonly phases: ReadonlyArray<{
    readonly name: string;
    readonly state: string;
    readonly startedAt: string | null;
    readonly endedAt: string | null;
    readonly progress: {
      readonly bytes: number;
      readonly items: number;
      readonly totalBytes?: number;
      readonly totalItems?: number;
      readonly bytesPerSecond?: number;
      readonly etaSeconds?: number;
    } | null;
  }>;
  readonly result: Record<string, unknown> | null;
  readonly errorCount: number;
  /** The first per-item errors (path and message). */
  readonly errors: ReadonlyArray<{ readonly path: string; readonly message: string }>;
  readonly attempts: ReadonlyArray<{
    readonly startedAt: string;
    readonly endedAt: string;
    readonly outcome: string;
    readonly error: { readonly code: string; readonly message: string };
  }>;
  readonly retryCount: number;
  readonly maxRetries: number;
  readonly runAfter: string;
  readonly cancelRequested: boolean;
  readonly createdAt: string;
  readonly startedAt: string | null;
  readonly endedAt: string | null;
}

/** A token as the API shows it; `token` (the secret) only in the answer that creates it. */
export interface TokenView {
  readonly id: string;
  readonly name: string;
  readonly createdAt: string;
  readonly lastUsedAt: string | null;
  readonly revokedAt: string | null;
  readonly token?: string;
}

/** Every list answer: `{ data: [...] }`. */
export interface ListView<T> {
  readonly data: readonly T[];
}
