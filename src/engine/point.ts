import { HoldfastError } from '../core/index.js';

/** How consistent a recovery point is with respect to the source's writers. */
export const CONSISTENCY_LEVELS = ['crash', 'file-system', 'application'] as const;
/** One of {@link CONSISTENCY_LEVELS}. */
export type Consistency = (typeof CONSISTENCY_LEVELS)[number];

/** Counters recorded in a point. */
export interface PointStats {
  readonly files: number;
  readonly dirs: number;
  readonly others: number;
  /** Logical bytes of file content in the point. */
  readonly bytes: number;
  /** Files read because they were new or changed. */
  readonly filesRead: number;
  /** Plaintext bytes of blobs that were new to the vault. */
  readonly newBytes: number;
  /** Bytes of packs written for this point. */
  readonly storedBytes: number;
  /** Entries that could not be read and are missing from the point. */
  readonly errors: number;
  readonly durationMs: number;
}

/** A recovery point manifest, stored sealed under `points/<id>`. Written last. */
export interface PointManifest {
  readonly v: 1;
  /** ISO-8601 time the backup started. */
  readonly time: string;
  readonly host: string;
  readonly user: string;
  /** Paths as given on the command line, made absolute. */
  readonly paths: readonly string[];
  readonly tags: readonly string[];
  readonly parent?: string;
  /** Id of the root tree blob. */
  readonly tree: string;
  readonly consistency: Consistency;
  readonly stats: PointStats;
  readonly program: string;
}

/** A manifest together with the id it is stored under. */
export interface Point extends PointManifest {
  readonly id: string;
}

/** Validates a decoded manifest value. */
export function decodePoint(id: string, value: unknown): Point {
  const m = value as Partial<PointManifest> | null;
  if (
    m === null ||
    typeof m !== 'object' ||
    m.v !== 1 ||
    typeof m.time !== 'string' ||
    typeof m.tree !== 'string' ||
    !/^[0-9a-f]{64}$/.test(m.tree) ||
    !Array.isArray(m.paths)
  ) {
    throw new HoldfastError(
      'VAULT_INTEGRITY',
      `Recovery point ${id.slice(0, 12)} has a malformed manifest.`,
    );
  }
  return {
    ...(m as PointManifest),
    tags: Array.isArray(m.tags) ? m.tags : [],
    consistency: CONSISTENCY_LEVELS.includes(m.consistency as Consistency)
      ? (m.consistency as Consistency)
      : 'crash',
    id,
  };
}
