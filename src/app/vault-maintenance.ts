import { HoldfastError } from '../core/index.js';
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

/**
 * Deletes one point's manifest by hand (an image, a disk snapshot); VAULT_IMMUTABLE naming
 * `what` when a storage retention lock still holds it.
 */
export async function forgetPointOrRefuse(vault: Vault, id: string, what: string): Promise<void> {
  const { locked } = await forgetPointIds(vault, [id]);
  if (locked.length > 0)
    throw new HoldfastError(
      'VAULT_IMMUTABLE',
      `${what} is under a storage retention lock until ${new Date(locked[0]!.until).toISOString()}.`,
    );
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
