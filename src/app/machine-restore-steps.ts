import { describeError, HoldfastError } from '../core/index.js';
import {
  acquireLock,
  createBlobOpener,
  Restorer,
  verifyRestore,
  type OverwriteMode,
  type Point,
  type RestoreProgress,
  type Vault,
} from '../engine/index.js';
import type { JobContext } from '../jobs/index.js';

/**
 * Runs `work` under a shared lock on `vault`: a prune waits until the restore has read what it
 * needs (ten minutes at most for a running prune to end).
 */
export async function underRestoreLock<T>(
  vault: Vault,
  signal: AbortSignal,
  work: () => Promise<T>,
): Promise<T> {
  const lock = await acquireLock(vault, {
    exclusive: false,
    purpose: 'restore',
    waitMs: 10 * 60_000,
    signal,
  });
  try {
    return await work();
  } finally {
    await lock.release();
  }
}

/** What a restore writes: where, which entries, and over what is there. */
export interface RestoreRun {
  readonly target: string;
  readonly include?: readonly string[];
  readonly exclude?: readonly string[];
  readonly overwrite?: OverwriteMode;
}

/**
 * Runs the engine's restore of a point as the job's `restore` phase work: decrypting on
 * worker threads, per-entry failures as the job's errors, progress once a second.
 */
export async function runRestorer(
  ctx: JobContext,
  source: { vault: Vault; point: Point },
  run: RestoreRun,
): Promise<RestoreProgress> {
  const opener = createBlobOpener(source.vault.keys.encryption);
  const restorer = new Restorer(source.vault, source.point, {
    target: run.target,
    include: run.include ?? [],
    exclude: run.exclude ?? [],
    overwrite: run.overwrite ?? 'if-changed',
    signal: ctx.signal,
    opener,
    onError: (path, error) => ctx.itemError({ path, message: describeError(error) }),
  });
  const report = (): void =>
    ctx.progress('restore', {
      bytes: restorer.progress.bytes,
      items: restorer.progress.files,
      totalBytes: source.point.stats.bytes,
      totalItems: source.point.stats.files,
    });
  const timer = setInterval(report, 1000);
  try {
    return await restorer.run();
  } finally {
    clearInterval(timer);
    report();
    await opener.close();
  }
}

/** {@link runRestorer} for machine disks: an entry that failed fails the whole restore. */
export async function restoreTree(
  ctx: JobContext,
  source: { vault: Vault; point: Point },
  target: string,
  filter: { include?: string[]; exclude?: string[] },
): Promise<RestoreProgress> {
  const progress = await runRestorer(ctx, source, { target, ...filter });
  if (progress.errors > 0)
    throw new HoldfastError(
      'RESTORE_WRITE_FAILED',
      `${progress.errors} entries could not be restored under ${target}; see the job's errors.`,
    );
  return progress;
}

export async function verifyPhase(
  ctx: JobContext,
  source: { vault: Vault; point: Point },
  target: string,
  wanted: boolean,
): Promise<{ checked: number; bytes: number } | null> {
  if (!wanted) {
    await ctx.skipPhase('verify');
    return null;
  }
  await ctx.startPhase('verify');
  const result = await verifyOrThrow(ctx, source, target, {});
  await ctx.finishPhase('verify');
  return result;
}

export async function verifyOrThrow(
  ctx: JobContext,
  source: { vault: Vault; point: Point },
  target: string,
  filter: { include?: string[] },
): Promise<{ checked: number; bytes: number }> {
  const mismatches: string[] = [];
  const result = await verifyRestore(
    source.vault,
    source.point,
    target,
    { include: filter.include ?? [], exclude: [] },
    (path, reason) => mismatches.push(`${path}: ${reason}`),
    ctx.signal,
  );
  if (mismatches.length > 0)
    throw new HoldfastError(
      'RESTORE_WRITE_FAILED',
      `Verification failed: ${mismatches.slice(0, 5).join('; ')}`,
    );
  return result;
}
