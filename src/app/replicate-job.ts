import type { Catalog, VaultRecord } from '../catalog/index.js';
import { HoldfastError, type Clock } from '../core/index.js';
import type { JobHandler } from '../jobs/index.js';
import { jobSubject, type JobDeps } from './job-deps.js';
import { openBackend } from './open-vault.js';
import { replicateUntilCaughtUp, replicationLag } from './replication.js';

/** Phases of a replicate job. */
export const REPLICATE_PHASES = ['copy'] as const;

/**
 * Copies a GRS vault's new objects to its secondary location and records the outcome: when
 * it last caught up, and — when a pass cannot finish — how far behind the secondary is and
 * since when.
 */
export function replicateJobHandler(deps: JobDeps): JobHandler {
  return async (ctx) => {
    const { vault } = await jobSubject(deps, ctx.job);
    if (vault.redundancy !== 'grs' || vault.secondaryLocation === null)
      throw new HoldfastError('STATE_CONFLICT', `Vault '${vault.name}' has no secondary location.`);
    // Queued before a failover paused replication: it would copy towards the old primary.
    if (vault.replication.paused) return { result: { skipped: 'replication is paused' } };
    await ctx.startPhase('copy');
    const primary = openBackend(vault.location);
    const secondary = openBackend(vault.secondaryLocation, { create: true });
    try {
      // A check of the secondary running now would take packs deleted under it for damage:
      // deletions wait for the next pass.
      const checking = (await deps.catalog.jobs.active('verify', { vaultId: vault.id })).some(
        (job) => job.state === 'running' && job.params['from'] === 'secondary',
      );
      const done = await replicateUntilCaughtUp(primary, secondary, {
        deletions: !checking,
        clock: deps.clock,
        signal: ctx.signal,
        onProgress: (items, bytes) => ctx.progress('copy', { items, bytes }),
      });
      await deps.catalog.vaults.setReplication(vault.id, {
        objectsBehind: 0,
        bytesBehind: 0,
        behindSince: null,
        lastReplicatedAt: done.listedAt,
      });
      await ctx.finishPhase('copy', {
        copied: done.copied,
        bytes: done.bytesCopied,
        passes: done.passes,
      });
      return {
        result: {
          copied: done.copied,
          bytesCopied: done.bytesCopied,
          deleted: done.deleted,
          passes: done.passes,
        },
      };
    } catch (error) {
      await recordLag(deps.catalog, deps.clock, vault).catch(() => undefined);
      throw error;
    } finally {
      await Promise.all([primary.close(), secondary.close()]);
    }
  };
}

/** Measures and stores how far the secondary is behind (after a failed pass, or on demand). */
export async function recordLag(catalog: Catalog, clock: Clock, vault: VaultRecord): Promise<void> {
  if (vault.secondaryLocation === null) return;
  const primary = openBackend(vault.location);
  const secondary = openBackend(vault.secondaryLocation);
  try {
    const lag = await replicationLag(primary, secondary);
    await catalog.vaults.setReplication(vault.id, {
      ...lag,
      behindSince: lag.objectsBehind === 0 ? null : (vault.replication.behindSince ?? clock.now()),
    });
  } finally {
    await Promise.all([primary.close(), secondary.close()]);
  }
}
