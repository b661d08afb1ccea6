import type { VaultRecord } from '../catalog/index.js';
import { isAgentItem } from '../catalog/index.js';
import { decodePoint } from '../engine/index.js';
import { recordItemPoint } from './item-points.js';
import { lockNewPoint } from './object-locking.js';
import type { JobDeps } from './job-deps.js';
import { queueReplication } from './redundancy.js';

/** What became of a point an agent added. */
export type AgentPointOutcome =
  | { readonly recorded: true; readonly item: string; readonly point: string }
  | { readonly recorded: false; readonly reason: string };

/** The tag an agent puts on its backups to name its item: `item:<name>`. */
const ITEM_TAG = /^item:(.+)$/;

/**
 * Records in the catalog a point an agent has just added to `vault` through the server
 * (docs/agents.md): the point names its item with the tag `item:<name>`, an agent item of that
 * vault. From then on the server's retention (with soft delete) is what removes it — the agent
 * itself cannot. The server reads the point with its own key slot.
 */
export async function recordAgentPoint(
  deps: JobDeps,
  vault: VaultRecord,
  pointId: string,
): Promise<AgentPointOutcome> {
  if ((await deps.catalog.points.byVaultRef(vault.id, pointId)) !== undefined)
    return { recorded: false, reason: 'already recorded' };
  const opened = await deps.access.open(vault, { index: 'none' });
  // Index read only if the vault locks objects (lockNewPoint needs it to find the packs).
  const point = decodePoint(pointId, await opened.loadObject('point', pointId));
  const names = point.tags.flatMap((tag) => ITEM_TAG.exec(tag)?.[1] ?? []);
  for (const name of names) {
    const item = await deps.catalog.items.byName(name);
    if (item === undefined || item.vaultId !== vault.id || !isAgentItem(item)) continue;
    if (item.state !== 'protected')
      return { recorded: false, reason: `item '${name}' is ${item.state}` };
    const time = Date.parse(point.time);
    const record = await recordItemPoint(deps, item, vault, point, {
      time: Number.isFinite(time) ? time : deps.clock.now(),
      snapshotRef: null,
      vaultRef: pointId,
      jobId: null,
    });
    await lockNewPoint(vault, opened, pointId, record.expiresAt);
    await queueReplication(deps, vault);
    return { recorded: true, item: name, point: pointId };
  }
  return {
    recorded: false,
    reason:
      names.length === 0
        ? 'the point has no item:<name> tag'
        : `no agent item named ${names.map((n) => `'${n}'`).join(', ')} in vault '${vault.name}'`,
  };
}
