import {
  acquireLock,
  createBlobSealer,
  prune,
  type PruneReport,
  type Vault,
  deleteUnlessLocked,
} from '../engine/index.js';

/** Deletes point manifests under a shared lock; their data goes with the next prune. */
export async function forgetPointIds(
  vault: Vault,
  ids: readonly string[],
  signal?: AbortSignal,
): Promise<{ removed: string[]; locked: Array<{ id: string; until: number }> }> {
  const removed: string[] = [];
  const locked: Array<{ id: string; until: number }> = [];
  if (ids.length === 0) return { removed, locked };
  const lock = await acquireLock(vault, {
    exclusive: false,
    purpose: 'forget',
    waitMs: 10 * 60_000,
    ...(signal ? { signal } : {}),
  });
  try {
    const now = vault.clock.now();
    for (const id of ids) {
      const result = await deleteUnlessLocked(vault.backend, `points/${id}`, now, signal);
      if (result.outcome === 'locked') locked.push({ id, until: result.until });
      else removed.push(id);
    }
  } finally {
    await lock.release();
  }
  return { removed, locked };
}

/** Prunes a vault, waiting up to ten minutes for running backups to release their locks. */
export async function pruneVault(vault: Vault, signal?: AbortSignal): Promise<PruneReport> {
  const sealer = createBlobSealer(vault.keys.encryption, { level: vault.config.compressionLevel });
  try {
    return await prune(vault, {
      sealer,
      lockWaitMs: 10 * 60_000,
      ...(signal ? { signal } : {}),
    });
  } finally {
    await sealer.close();
  }
}

/** Bytes of pack files in a vault. */
export async function storedBytes(vault: Vault, signal?: AbortSignal): Promise<number> {
  let total = 0;
  for (const size of (await vault.listPacks(signal)).values()) total += size;
  return total;
}
