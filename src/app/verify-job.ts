import { HoldfastError } from '../core/index.js';
import { checkVault } from '../engine/index.js';
import type { JobHandler } from '../jobs/index.js';
import { jobSubject, type JobDeps } from './job-deps.js';

/** Phases of a verify job. */
export const VERIFY_PHASES = ['check'] as const;

/**
 * Checks a vault's structure and reads `readDataPercent` of its packs (job parameter,
 * default 10); damage fails the job with the packs and points affected in its message. With
 * `from: 'secondary'` it checks a GRS vault's secondary copy and records when it last passed.
 */
export function verifyJobHandler(deps: JobDeps): JobHandler {
  return async (ctx) => {
    const { vault } = await jobSubject(deps, ctx.job);
    const percent = Number(ctx.job.params['readDataPercent'] ?? 10);
    const from = ctx.job.params['from'] === 'secondary' ? 'secondary' : 'primary';
    await ctx.startPhase('check');
    const opened = await deps.access.open(vault, { index: 'none', from });
    const report = await checkVault(opened, {
      readDataFraction: Math.min(1, Math.max(0, percent / 100)),
      signal: ctx.signal,
      onProgress: (p) => ctx.progress('check', { items: p.done, bytes: 0, totalItems: p.total }),
    });
    await ctx.finishPhase('check');
    if (!report.ok)
      throw new HoldfastError(
        'VAULT_INTEGRITY',
        `Vault '${vault.name}'${from === 'secondary' ? ' (secondary copy)' : ''} is damaged: ${report.damagedPacks.length} packs, ${report.damagedBlobs.length} blobs, ${report.affected.length} points affected. Run 'holdfast check --read-data' on it for details.`,
      );
    if (from === 'secondary')
      await deps.catalog.vaults.setReplication(vault.id, { lastVerifiedAt: deps.clock.now() });
    return { result: { ok: true, from, stats: report.stats, warnings: report.problems.length } };
  };
}
