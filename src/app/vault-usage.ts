import type { Catalog, VaultRecord } from '../catalog/index.js';
import type { Clock } from '../core/index.js';
import type { Vault } from '../engine/index.js';
import { storedBytes } from './vault-maintenance.js';

/**
 * Measures what a vault holds and caches it in the catalog: protected bytes (newest point of
 * each item), stored bytes (its packs), and the dedup ratio (logical bytes of all points kept
 * over stored bytes).
 */
export async function refreshVaultUsage(
  catalog: Catalog,
  clock: Clock,
  record: VaultRecord,
  vault: Vault,
  signal?: AbortSignal,
): Promise<void> {
  const stored = await storedBytes(vault, signal);
  const points = (await catalog.points.forVault(record.id)).filter((p) => p.vaultRef !== null);
  const newestByItem = new Map<string, number>();
  let logical = 0;
  for (const point of points) {
    logical += point.bytes;
    newestByItem.set(point.itemId, point.bytes);
  }
  let protectedBytes = 0;
  for (const bytes of newestByItem.values()) protectedBytes += bytes;
  await catalog.vaults.setUsage(record.id, {
    protectedBytes,
    storedBytes: stored,
    dedupRatio: stored > 0 ? Math.round((logical / stored) * 100) / 100 : 1,
    points: points.length,
    refreshedAt: clock.now(),
  });
}
