import { describeError } from '../core/index.js';
import type { BlobType } from './blob-codec.js';
import type { LockInfo } from './locks.js';
import { packObjectName } from './pack.js';

/** How serious a problem found by `holdfast check` is. */
export const CHECK_SEVERITIES = ['error', 'warning'] as const;
/** One of {@link CHECK_SEVERITIES}: errors mean data is or may be lost; warnings do not. */
export type CheckSeverity = (typeof CHECK_SEVERITIES)[number];

/**
 * Every kind of problem the checker reports, with its fixed severity. Warnings cover leftovers
 * that lose no data (an interrupted backup's pack, a dead process's lock).
 */
export const CHECK_PROBLEM_SEVERITY = {
  'index-damaged': 'error',
  'pack-missing': 'error',
  'pack-truncated': 'error',
  'pack-damaged': 'error',
  'pack-unindexed': 'warning',
  'blob-missing': 'error',
  'blob-damaged': 'error',
  'tree-damaged': 'error',
  'point-damaged': 'error',
  'lock-stale': 'warning',
  'lock-damaged': 'warning',
} as const satisfies Record<string, CheckSeverity>;

/** One kind of problem: a key of {@link CHECK_PROBLEM_SEVERITY}. */
export type CheckProblemKind = keyof typeof CHECK_PROBLEM_SEVERITY;

/** The kinds of {@link CHECK_PROBLEM_SEVERITY} in report order. */
export const CHECK_PROBLEM_KINDS = Object.keys(CHECK_PROBLEM_SEVERITY) as CheckProblemKind[];

/** The vault objects a problem is about; full ids, so tools can act on them. */
export interface CheckSubject {
  /** Index file id (`index/<id>`). */
  readonly index?: string;
  /** Pack id (`packs/<xx>/<id>`). */
  readonly pack?: string;
  /** Blob id (data or tree). */
  readonly blob?: string;
  /** Recovery point id (`points/<id>`). */
  readonly point?: string;
  /** Lock file name (`locks/<name>`). */
  readonly lock?: string;
}

/** One problem found by the checker. */
export interface CheckProblem extends CheckSubject {
  readonly kind: CheckProblemKind;
  readonly severity: CheckSeverity;
  /** Says what is wrong and what to do about it. */
  readonly message: string;
}

/** A recovery point with files that cannot be fully restored. */
export interface AffectedPoint {
  readonly point: string;
  /** ISO-8601 time of the point. */
  readonly time: string;
  /**
   * Display paths (`/home/x/file`) of files whose data is damaged or missing, and of
   * directories whose listing is unreadable (nothing below them can be restored). Sorted.
   */
  readonly paths: readonly string[];
}

/** Counters of what the checker looked at. */
export interface CheckStats {
  /** Index files read, damaged ones included. */
  indexFiles: number;
  /** Packs named by the index, checked for presence and size. */
  packs: number;
  /** Distinct blobs in the index. */
  blobs: number;
  /** Recovery points read. */
  points: number;
  /** Distinct tree blobs read and decoded. */
  trees: number;
  /** Packs downloaded and verified in full. */
  packsRead: number;
  /** Blobs decrypted and re-hashed while reading packs. */
  blobsRead: number;
  /** Bytes downloaded from packs. */
  bytesRead: number;
}

/** What `holdfast check` found: a plain value, printed by the CLI and emitted by `--json`. */
export interface CheckReport {
  /** True when no problem is an error; warnings are allowed. */
  readonly ok: boolean;
  /** Ordered by kind (as in {@link CHECK_PROBLEM_KINDS}), then by the objects they name. */
  readonly problems: readonly CheckProblem[];
  /** Packs that are missing, truncated or whose bytes are damaged. Sorted. */
  readonly damagedPacks: readonly string[];
  /** Blobs whose data cannot be read: missing, cut off or failing authentication. Sorted. */
  readonly damagedBlobs: readonly string[];
  /** Points with files that cannot be fully restored, oldest first. */
  readonly affected: readonly AffectedPoint[];
  readonly stats: CheckStats;
}

/**
 * Collects problems while a check runs, worded in one place, and turns them into a
 * {@link CheckReport}. Internal to the checker; exported for it alone.
 */
export class CheckFindings {
  readonly stats: CheckStats = {
    indexFiles: 0,
    packs: 0,
    blobs: 0,
    points: 0,
    trees: 0,
    packsRead: 0,
    blobsRead: 0,
    bytesRead: 0,
  };
  readonly damagedPacks = new Set<string>();
  readonly damagedBlobs = new Set<string>();
  private readonly problems: CheckProblem[] = [];

  /** An index file that cannot be read or authenticated. */
  indexDamaged(index: string, error: unknown): void {
    this.add(
      'index-damaged',
      `Index file ${index} is damaged: ${errorClause(error)}. The packs it lists count as unindexed until the index is rebuilt from pack headers; do not prune before then, or their data is deleted.`,
      { index },
    );
  }

  /** An indexed pack that is not in the backend. */
  packMissing(pack: string, blobs: number): void {
    this.damagedPacks.add(pack);
    this.add(
      'pack-missing',
      `Pack ${pack} is listed in the index but missing from the vault: its ${blobs} blob(s) are lost. ${putBack(pack)}`,
      { pack },
    );
  }

  /** An indexed pack shorter than its index entries need. */
  packTruncated(pack: string, size: number, needed: number): void {
    this.damagedPacks.add(pack);
    this.add(
      'pack-truncated',
      `Pack ${pack} is ${size} bytes but the index needs at least ${needed}: it was cut short. ${putBack(pack)}`,
      { pack },
    );
  }

  /** A pack whose bytes, header or blobs failed verification; `faults` says how. */
  packDamaged(pack: string, faults: readonly string[]): void {
    this.damagedPacks.add(pack);
    this.add('pack-damaged', `Pack ${pack} is damaged: ${faults.join('; ')}. ${putBack(pack)}`, {
      pack,
    });
  }

  /** A pack in the backend that no index lists. Call after every {@link indexDamaged}. */
  packUnindexed(pack: string): void {
    // After index damage, an "unindexed" pack may hold live data that prune would delete.
    const advice = this.has('index-damaged')
      ? 'it may be listed by a damaged index file: rebuild the index before pruning, or prune deletes it'
      : 'it was left by an interrupted backup and is removed by the next prune';
    this.add('pack-unindexed', `Pack ${pack} is in no index; ${advice}.`, { pack });
  }

  /** A blob that failed authentication or re-hashing; `fault` is a clause. */
  blobDamaged(blob: string, type: BlobType, pack: string, fault: string): void {
    this.damagedBlobs.add(blob);
    this.add(
      'blob-damaged',
      `The ${type} blob ${blob} in pack ${pack} is damaged: ${fault}. The files that use it (see affected) cannot be fully restored. ${putBack(pack)}`,
      { pack, blob },
    );
  }

  /** A data blob a file uses that no index lists; `path` is the first file found. */
  blobMissing(blob: string, point: string, path: string): void {
    this.damagedBlobs.add(blob);
    this.add(
      'blob-missing',
      `Data blob ${blob}, used by ${path} in point ${point.slice(0, 12)}, is in no index: its data is missing from the vault. The files that use it (see affected) cannot be fully restored.`,
      { point, blob },
    );
  }

  /** A tree that cannot be read; `fault` completes "tree … " (e.g. "is in no index"). */
  treeDamaged(tree: string, point: string, path: string, fault: string): void {
    this.damagedBlobs.add(tree);
    this.add(
      'tree-damaged',
      `The listing of ${path} in point ${point.slice(0, 12)} (tree ${tree.slice(0, 12)}) ${fault}. Nothing below it can be restored from the points that use it.`,
      { point, blob: tree },
    );
  }

  /** A recovery point manifest that cannot be read or authenticated. */
  pointDamaged(point: string, error: unknown): void {
    this.add(
      'point-damaged',
      `Recovery point ${point} is damaged: ${errorClause(error)}. It cannot be listed or restored; forget it once you know no other copy of the vault holds it intact.`,
      { point },
    );
  }

  /** A lock file that cannot be read. */
  lockDamaged(lock: string, error: unknown): void {
    this.add(
      'lock-damaged',
      `Lock file ${lock} cannot be read: ${errorClause(error)}. It blocks nothing; delete locks/${lock}.`,
      { lock },
    );
  }

  /** A lock not refreshed for longer than the stale limit. */
  lockStale(lock: string, info: Partial<LockInfo>, idleMs: number): void {
    this.add(
      'lock-stale',
      `Lock ${lock} (${String(info.purpose)}, pid ${String(info.pid)} on ${String(info.host)}) has not been refreshed for ${Math.round(idleMs / 60_000)} minutes: its process is gone. The next backup or prune removes it.`,
      { lock },
    );
  }

  /** The finished report. */
  report(affected: readonly AffectedPoint[]): CheckReport {
    const order = (p: CheckProblem): number => CHECK_PROBLEM_KINDS.indexOf(p.kind);
    const key = (p: CheckProblem): string =>
      [p.index, p.pack, p.point, p.blob, p.lock].map((s) => s ?? '').join(' ');
    // Parts of the check run concurrently; sorting keeps reports comparable from run to run.
    const problems = [...this.problems].sort(
      (a, b) => order(a) - order(b) || key(a).localeCompare(key(b)),
    );
    return {
      ok: problems.every((p) => p.severity !== 'error'),
      problems,
      damagedPacks: [...this.damagedPacks].sort(),
      damagedBlobs: [...this.damagedBlobs].sort(),
      affected: [...affected].sort(
        (a, b) => a.time.localeCompare(b.time) || a.point.localeCompare(b.point),
      ),
      stats: { ...this.stats },
    };
  }

  private add(kind: CheckProblemKind, message: string, subject: CheckSubject): void {
    this.problems.push({ kind, severity: CHECK_PROBLEM_SEVERITY[kind], message, ...subject });
  }

  private has(kind: CheckProblemKind): boolean {
    return this.problems.some((p) => p.kind === kind);
  }
}

function putBack(pack: string): string {
  return `Put ${packObjectName(pack)} back from another copy of the vault if you have one.`;
}

/** An error's message as a clause to follow a colon: no final period, lower-case start. */
export function errorClause(error: unknown): string {
  const text = describeError(error).replace(/\.$/, '');
  // Leave acronyms and ids alone ("SHA-256", "HFP1"): only a capitalised word is lowered.
  return /^[A-Z][a-z]/.test(text) ? text[0]!.toLowerCase() + text.slice(1) : text;
}
