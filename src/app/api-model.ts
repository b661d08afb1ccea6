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
    /** `grs` copies every object, asynchronously, to `secondaryLocation` (docs/redundancy.md). */
    redundancy: z.enum(['lrs', 'grs']).optional(),
    secondaryLocation: z.string().min(1).max(4096).optional(),
    compressionLevel: z.number().int().min(1).max(19).optional(),
  })
  .strict()
  .refine((v) => (v.passphrase === undefined) !== (v.keyFile === undefined), {
    message: 'give exactly one of passphrase or keyFile',
    path: ['passphrase'],
  })
  .refine((v) => (v.redundancy === 'grs') === (v.secondaryLocation !== undefined), {
    message: "redundancy 'grs' needs a secondaryLocation, and only grs takes one",
    path: ['secondaryLocation'],
  });
export type CreateVaultInput = z.infer<typeof CREATE_VAULT_INPUT>;

/** `PATCH /api/vaults/:name`. */
export const UPDATE_VAULT_INPUT = z
  .object({
    softDelete: SOFT_DELETE_INPUT.optional(),
    /** Only before the vault's first recovery point (as Azure). */
    redundancy: z.enum(['lrs', 'grs']).optional(),
    secondaryLocation: z.string().min(1).max(4096).optional(),
  })
  .strict();
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

/** How a machine item is made (docs/disks.md): its disks, configuration, scripts, freeze. */
export const MACHINE_INPUT = z
  .object({
    /** Image files or block devices, each `path` or `name=path`. */
    disks: z.array(z.string().min(2).max(4200)).min(1).max(32),
    excludeDisks: z.array(z.string().min(1).max(100)).max(32).optional(),
    configs: z.array(ABSOLUTE_PATH).max(16).optional(),
    preScript: ABSOLUTE_PATH.optional(),
    postScript: ABSOLUTE_PATH.optional(),
    scriptTimeoutSeconds: z.number().int().min(1).max(3600).optional(),
    scriptRetries: z.number().int().min(0).max(5).optional(),
    continueOnScriptFailure: z.boolean().optional(),
    freezeCommand: ABSOLUTE_PATH.optional(),
    fsfreeze: z.array(ABSOLUTE_PATH).max(32).optional(),
    /** QMP socket of the QEMU running the machine (its dirty bitmaps tell what changed). */
    qemuMonitor: ABSOLUTE_PATH.optional(),
  })
  .strict();
export type MachineInput = z.infer<typeof MACHINE_INPUT>;

/** `POST /api/items`: protect paths of this host, or a machine, into a vault with a policy. */
export const PROTECT_INPUT = z
  .object({
    name: NAME,
    workload: z.enum(['files', 'machine']).optional(),
    machine: MACHINE_INPUT.optional(),
    /** What the server backs up; for an agent item, what the agent is expected to back up. */
    paths: z.array(ABSOLUTE_PATH).max(64).optional(),
    excludes: z.array(z.string().min(1).max(1024)).max(1000).optional(),
    oneFileSystem: z.boolean().optional(),
    /** Backed up by an agent with its own token (docs/agents.md), not by the server. */
    agent: z.boolean().optional(),
    vault: NAME,
    policy: NAME,
  })
  .strict()
  .refine(
    (input) =>
      input.workload === 'machine' || input.agent === true || (input.paths?.length ?? 0) > 0,
    {
      message:
        'paths: give at least one path to back up (or agent: true for an item an agent backs up)',
      path: ['paths'],
    },
  )
  .refine((input) => (input.workload === 'machine') === (input.machine !== undefined), {
    message: "machine: give it exactly when workload is 'machine'",
    path: ['machine'],
  });
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
    /** Required, except when a machine's disks are replaced in place (`as: replace`). */
    target: ABSOLUTE_PATH.optional(),
    include: z.array(z.string().min(1).max(4096)).max(1000).optional(),
    exclude: z.array(z.string().min(1).max(4096)).max(1000).optional(),
    overwrite: z.enum(['never', 'if-changed', 'always']).optional(),
    verify: z.boolean().optional(),
    /** Which tier to read: the fastest that holds the point, unless told. */
    tier: z.enum(['auto', 'snapshot', 'vault']).optional(),
    /** Cross-region restore: read the GRS vault's secondary copy. */
    from: z.enum(['primary', 'secondary']).optional(),
    /** Machine points (docs/disks.md): as disks (default), a new machine, or in place. */
    as: z.enum(['disks', 'replace', 'new-machine', 'files']).optional(),
    /** `as: files`: paths inside the point's disks to extract (`<disk>/p<N>/<path>`). */
    paths: z.array(z.string().min(1).max(4096)).min(1).max(1000).optional(),
    /** Disk image format of `as: disks` and `as: new-machine` (default raw). */
    format: z.enum(['raw', 'qcow2']).optional(),
    /** The new machine's name (`as: new-machine`). */
    newName: NAME.optional(),
    /** `as: replace`: go ahead although a process has the disks open. */
    force: z.boolean().optional(),
  })
  .strict();
export type RestoreInput = z.infer<typeof RESTORE_INPUT>;

/** `POST /api/tokens`. */
export const CREATE_TOKEN_INPUT = z
  .object({
    name: NAME,
    /** An agent token for this vault: it may read and add its objects, nothing else. */
    agentFor: NAME.optional(),
  })
  .strict();

/** Query of `GET /api/jobs`. */
export const JOB_QUERY = z
  .object({
    item: NAME.optional(),
    state: z.string().max(200).optional(),
    type: z.string().max(200).optional(),
    limit: z.coerce.number().int().min(1).max(1000).optional(),
  })
  .strict();

const TIME = z.iso.datetime();
const MAYBE_TIME = TIME.nullable();
const COUNTERS = z.object({
  bytes: z.number(),
  items: z.number(),
  totalBytes: z.number().optional(),
  totalItems: z.number().optional(),
  bytesPerSecond: z.number().optional(),
  etaSeconds: z.number().optional(),
});

/** A vault as the API shows it. */
export const VAULT_VIEW = z.object({
  id: z.string(),
  name: z.string(),
  location: z.string(),
  redundancy: z.string(),
  /** `disabled`, `enabled` or `locked` (docs/immutability.md). */
  immutability: z.enum(['disabled', 'enabled', 'locked']),
  secondaryLocation: z.string().nullable(),
  replication: z
    .object({
      lagSeconds: z.number(),
      objectsBehind: z.number(),
      bytesBehind: z.number(),
      lastReplicatedAt: MAYBE_TIME,
      /** When a check of the secondary copy last passed (daily). */
      lastVerifiedAt: MAYBE_TIME,
      paused: z.boolean(),
      failedOverFrom: z.string().nullable(),
      /**
       * Set when measuring the lag just now failed (a location unreachable): the figures
       * above are then the last ones measured.
       */
      measureError: z.string().nullable(),
    })
    .nullable(),
  softDelete: z.object({ state: z.string(), days: z.number() }),
  usage: z.object({
    protectedBytes: z.number(),
    storedBytes: z.number(),
    dedupRatio: z.number(),
    points: z.number(),
    refreshedAt: MAYBE_TIME,
  }),
  items: z.number(),
  createdAt: TIME,
});
export type VaultView = z.infer<typeof VAULT_VIEW>;

/** A policy as the API shows it; `scheduleText` is the schedule in its text form. */
export const POLICY_VIEW = z.object({
  id: z.string(),
  name: z.string(),
  schedule: z.unknown(),
  scheduleText: z.string(),
  timezone: z.string(),
  snapshotDays: z.number(),
  tier: z.enum(['standard', 'enhanced']),
  retention: z.record(z.string(), z.number()),
  items: z.number(),
  createdAt: TIME,
  updatedAt: TIME,
});
export type PolicyView = z.infer<typeof POLICY_VIEW>;

/**
 * A protected item as the API shows it. `state`: `protected`, `stopped` (protection stopped,
 * data kept) or `soft_deleted` (purged at `purgeAt`).
 */
export const ITEM_VIEW = z.object({
  id: z.string(),
  name: z.string(),
  workload: z.string(),
  paths: z.array(z.string()),
  excludes: z.array(z.string()),
  /** Backed up by an agent (docs/agents.md); the server schedules no backups for it. */
  agent: z.boolean(),
  /** A machine item's disks, configuration files and capture settings; null for files. */
  machine: z
    .object({
      disks: z.array(z.object({ name: z.string(), path: z.string() })),
      excludeDisks: z.array(z.string()),
      configs: z.array(z.string()),
      preScript: z.string().nullable(),
      postScript: z.string().nullable(),
      continueOnScriptFailure: z.boolean(),
      freezeCommand: z.string().nullable(),
      fsfreeze: z.array(z.string()),
      qemuMonitor: z.string().nullable(),
    })
    .nullable(),
  vault: z.string(),
  policy: z.string().nullable(),
  state: z.string(),
  nextRunAt: MAYBE_TIME,
  lastBackupAt: MAYBE_TIME,
  lastSuccessAt: MAYBE_TIME,
  deletedAt: MAYBE_TIME,
  purgeAt: MAYBE_TIME,
  points: z.number(),
  createdAt: TIME,
});
export type ItemView = z.infer<typeof ITEM_VIEW>;

/** A recovery point as the API shows it; `tiers` holds `snapshot`, `vault`, or both. */
export const POINT_VIEW = z.object({
  id: z.string(),
  item: z.string(),
  time: TIME,
  tiers: z.array(z.enum(['snapshot', 'vault'])),
  consistency: z.string(),
  files: z.number(),
  bytes: z.number(),
  storedBytes: z.number(),
  expiresAt: MAYBE_TIME,
  snapshotExpiresAt: MAYBE_TIME,
});
export type PointView = z.infer<typeof POINT_VIEW>;

/** A job as the API shows it (docs/jobs.md); `errors` holds the first per-item errors. */
export const JOB_VIEW = z.object({
  id: z.string(),
  type: z.string(),
  state: z.string(),
  trigger: z.string(),
  item: z.string().nullable(),
  vault: z.string().nullable(),
  params: z.record(z.string(), z.unknown()),
  phases: z.array(
    z.object({
      name: z.string(),
      state: z.string(),
      startedAt: MAYBE_TIME,
      endedAt: MAYBE_TIME,
      progress: COUNTERS.nullable(),
    }),
  ),
  result: z.record(z.string(), z.unknown()).nullable(),
  errorCount: z.number(),
  errors: z.array(z.object({ path: z.string(), message: z.string() })),
  attempts: z.array(
    z.object({
      startedAt: TIME,
      endedAt: TIME,
      outcome: z.string(),
      error: z.object({ code: z.string(), message: z.string() }),
    }),
  ),
  retryCount: z.number(),
  maxRetries: z.number(),
  runAfter: TIME,
  cancelRequested: z.boolean(),
  createdAt: TIME,
  startedAt: MAYBE_TIME,
  endedAt: MAYBE_TIME,
});
export type JobView = z.infer<typeof JOB_VIEW>;

/** A token as the API shows it; `token` (the secret) only in the answer that creates it. */
export const TOKEN_VIEW = z.object({
  id: z.string(),
  name: z.string(),
  scope: z.enum(['admin', 'agent']),
  /** The vault of an agent token. */
  vault: z.string().nullable(),
  createdAt: TIME,
  lastUsedAt: MAYBE_TIME,
  revokedAt: MAYBE_TIME,
  token: z.string().optional(),
});
export type TokenView = z.infer<typeof TOKEN_VIEW>;

/** The answer of every listing: `{ data: [...] }`. */
export function listOf<T extends z.ZodType>(item: T) {
  return z.object({ data: z.array(item) });
}

/** Every list answer: `{ data: [...] }`. */
export interface ListView<T> {
  readonly data: readonly T[];
}

/** `GET /api/items/:name/points/:point/browse?path=`: what is at a path inside a machine point. */
export const DISK_BROWSE_VIEW = z.object({
  path: z.string(),
  level: z.enum(['machine', 'disk', 'filesystem']),
  entries: z.array(
    z.object({
      name: z.string(),
      type: z.string(),
      size: z.number(),
      mode: z.number().optional(),
      mtime: z.string().optional(),
      detail: z.string().optional(),
    }),
  ),
});

/** `POST /api/items/:name/points/:point/export`: how long the export stays up (default 4 h). */
export const START_EXPORT_INPUT = z
  .object({ hours: z.number().min(0.01).max(72).optional() })
  .strict()
  .optional();

/** A machine point's disks served read-only over NBD on the server's loopback. */
export const DISK_EXPORT_VIEW = z.object({
  id: z.string(),
  item: z.string(),
  point: z.string(),
  host: z.string(),
  port: z.number(),
  urls: z.record(z.string(), z.string()),
  startedAt: TIME,
  expiresAt: TIME,
});
export type DiskExportView = z.infer<typeof DISK_EXPORT_VIEW>;
export type DiskBrowseView = z.infer<typeof DISK_BROWSE_VIEW>;

/** `POST /api/images`: a named image (template) from a machine point in the vault. */
export const CREATE_IMAGE_INPUT = z
  .object({ name: NAME, item: NAME, point: z.string().min(1).max(80).default('latest') })
  .strict();
export type CreateImageInput = z.input<typeof CREATE_IMAGE_INPUT>;

/** `POST /api/images/:name/deploy`: a new machine's disks and configuration from an image. */
export const DEPLOY_IMAGE_INPUT = z
  .object({ target: ABSOLUTE_PATH, newName: NAME.optional() })
  .strict();
export type DeployImageInput = z.infer<typeof DEPLOY_IMAGE_INPUT>;

/** A disk image (template) made from a machine point (docs/disks.md "Disk images"). */
export const DISK_IMAGE_VIEW = z.object({
  name: z.string(),
  vault: z.string(),
  item: z.string(),
  fromPoint: z.string(),
  createdAt: TIME,
  disks: z.array(z.object({ name: z.string(), size: z.number() })),
});
export type DiskImageView = z.infer<typeof DISK_IMAGE_VIEW>;

/** `POST /api/disk-snapshots`: a named snapshot of one disk into a vault (docs/disks.md). */
export const DISK_SNAPSHOT_INPUT = z
  .object({
    name: NAME,
    disk: ABSOLUTE_PATH,
    vault: NAME,
    /** Days it is kept; without it, indefinitely. */
    keepDays: z.number().int().min(1).max(36500).optional(),
  })
  .strict();
export type DiskSnapshotInput = z.infer<typeof DISK_SNAPSHOT_INPUT>;

/** `POST /api/disk-snapshots/:name/restore`. */
export const DISK_SNAPSHOT_RESTORE_INPUT = z
  .object({ target: ABSOLUTE_PATH, format: z.enum(['raw', 'qcow2']).optional() })
  .strict();
export type DiskSnapshotRestoreInput = z.infer<typeof DISK_SNAPSHOT_RESTORE_INPUT>;

/** A disk snapshot as the API shows it. */
export const DISK_SNAPSHOT_VIEW = z.object({
  name: z.string(),
  vault: z.string(),
  disk: z.string(),
  size: z.number(),
  storedBytes: z.number(),
  createdAt: TIME,
  expiresAt: MAYBE_TIME,
});
export type DiskSnapshotView = z.infer<typeof DISK_SNAPSHOT_VIEW>;
