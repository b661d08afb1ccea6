import { describeError, HoldfastError } from '../core/index.js';
import {
  createBlobOpener,
  Restorer,
  verifyRestore,
  type Point,
  type Vault,
} from '../engine/index.js';
import type { JobContext } from '../jobs/index.js';

export async function restoreTree(
  ctx: JobContext,
  source: { vault: Vault; point: Point },
  target: string,
  filter: { include?: string[]; exclude?: string[] },
) {
  const opener = createBlobOpener(source.vault.keys.encryption);
  const restorer = new Restorer(source.vault, source.point, {
    target,
    include: filter.include ?? [],
    exclude: filter.exclude ?? [],
    overwrite: 'if-changed',
    signal: ctx.signal,
    opener,
    onError: (path, error) => ctx.itemError({ path, message: describeError(error) }),
  });
  const report = (): void =>
    ctx.progress('restore', {
      bytes: restorer.progress.bytes,
      items: restorer.progress.files,
      totalBytes: source.point.stats.bytes,
    });
  const timer = setInterval(report, 1000);
  try {
    const progress = await restorer.run();
    if (progress.errors > 0)
      throw new HoldfastError(
        'RESTORE_WRITE_FAILED',
        `${progress.errors} entries could not be restored under ${target}; see the job's errors.`,
      );
    return progress;
  } finally {
    clearInterval(timer);
    report();
    await opener.close();
  }
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
