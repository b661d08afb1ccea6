import type { VaultRecord } from '../catalog/index.js';
import { lockPoint, retentionModeFor, type Vault } from '../engine/index.js';

// Locks this process has set or seen, per vault and mode. Locks only ever grow, so a value
// here is a lower bound of the real one and can only save a request, never skip a needed one.
const known = new Map<string, Map<string, number>>();

/**
 * Locks the objects of a point just added to an immutable vault until the point's expiry, on
 * a backend with object locks (docs/immutability.md, "Object locks"); nothing otherwise.
 * Returns how many locks were set or extended.
 */
export async function lockNewPoint(
  record: VaultRecord,
  vault: Vault,
  pointId: string,
  expiresAt: number | null,
  signal?: AbortSignal,
): Promise<number> {
  const mode = retentionModeFor(record.immutability);
  if (mode === undefined || expiresAt === null || !vault.backend.capabilities.objectLock) return 0;
  await vault.refreshIndex(signal ? { signal } : {});
  const key = `${record.id} ${record.location} ${mode}`;
  let cache = known.get(key);
  if (cache === undefined) known.set(key, (cache = new Map()));
  const { extended } = await lockPoint(vault, pointId, expiresAt, {
    mode,
    known: cache,
    ...(signal ? { signal } : {}),
  });
  return extended;
}
