import {
  acquireLock,
  createBlobSealer,
  prune,
  type PruneReport,
  type Vault,
} from '../engine/index.js';

/** Deletes point manifests under a shared lock; their data goes with the next prune. */
export async function forgetPointIds(
  vault: Vault,
  ids: readonly string[],
  signal?: AbortSignal,
): Promise<void> {
  if (ids.length === 0) return;
  const lock = await acquireLock(vault, {
    exclusive: false,
    purpose: 'forget',
    waitMs: 10 * 60_000,
    ...(signal ? { signal } : {}),
  });
  try {
    const existing = new Set(await vault.listObjects('point', signal));
    for (const id of ids) if (existing.has(id)) await vault.backend.delete(`points/${id}`);
  } finally {
    await lock.release();
  }
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
