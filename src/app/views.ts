import type {
  ItemRecord,
  JobRecord,
  PointRecord,
  PolicyRecord,
  TokenRecord,
  VaultRecord,
} from '../catalog/index.js';
import { formatScheduleText, parsePolicySpec, policyTier } from '../jobs/index.js';
import type {
  ItemView,
  JobView,
  PointView,
  PolicyView,
  TokenView,
  VaultView,
} from './api-model.js';

/** Epoch ms as ISO-8601, or null. */
export function iso(ms: number): string;
export function iso(ms: number | null): string | null;
export function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/** Names of catalog ids, for views that show names instead of ids. */
export interface NameLookup {
  vault(id: string | null): string | null;
  policy(id: string | null): string | null;
  item(id: string | null): string | null;
}

export function vaultView(vault: VaultRecord, items: number, now: number): VaultView {
  const r = vault.replication;
  return {
    id: vault.id,
    name: vault.name,
    location: vault.location,
    redundancy: vault.redundancy,
    immutability: vault.immutability,
    secondaryLocation: vault.secondaryLocation,
    replication:
      vault.redundancy !== 'grs'
        ? null
        : {
            lagSeconds: r.behindSince ? Math.max(0, (now - r.behindSince) / 1000) : 0,
            objectsBehind: r.objectsBehind ?? 0,
            bytesBehind: r.bytesBehind ?? 0,
            lastReplicatedAt: iso(r.lastReplicatedAt ?? null),
            lastVerifiedAt: iso(r.lastVerifiedAt ?? null),
            paused: r.paused === true,
            failedOverFrom: r.failedOverFrom ?? null,
            measureError: null,
          },
    softDelete: { ...vault.softDelete },
    usage: { ...vault.usage, refreshedAt: iso(vault.usage.refreshedAt) },
    items,
    createdAt: iso(vault.createdAt),
  };
}

export function policyView(policy: PolicyRecord, items: number): PolicyView {
  const spec = parsePolicySpec(policy.spec);
  return {
    id: policy.id,
    name: policy.name,
    schedule: spec.schedule,
    scheduleText: formatScheduleText(spec.schedule),
    timezone: spec.timezone,
    snapshotDays: spec.snapshotDays,
    tier: policyTier(spec),
    retention: { ...spec.retention } as Record<string, number>,
    items,
    createdAt: iso(policy.createdAt),
    updatedAt: iso(policy.updatedAt),
  };
}

export function itemView(item: ItemRecord, names: NameLookup, points: number): ItemView {
  return {
    id: item.id,
    name: item.name,
    workload: item.workload,
    ...sourceView(item),
    vault: names.vault(item.vaultId) ?? item.vaultId,
    policy: names.policy(item.policyId),
    state: item.state,
    nextRunAt: iso(item.nextRunAt),
    lastBackupAt: iso(item.lastBackupAt),
    lastSuccessAt: iso(item.lastSuccessAt),
    deletedAt: iso(item.deletedAt),
    purgeAt: iso(item.purgeAt),
    points,
    createdAt: iso(item.createdAt),
  };
}

export function pointView(point: PointRecord, itemName: string): PointView {
  const tiers: Array<'snapshot' | 'vault'> = [];
  if (point.snapshotRef !== null) tiers.push('snapshot');
  if (point.vaultRef !== null) tiers.push('vault');
  return {
    id: point.id,
    item: itemName,
    time: iso(point.time),
    tiers,
    consistency: point.consistency,
    files: point.files,
    bytes: point.bytes,
    storedBytes: point.storedBytes,
    expiresAt: iso(point.expiresAt),
    snapshotExpiresAt: iso(point.snapshotExpiresAt),
  };
}

// Per-item errors shown in a job view; the full count is `errorCount`.
const ERRORS_SHOWN = 100;

export function jobView(job: JobRecord, names: NameLookup): JobView {
  const errorCount =
    typeof job.result?.['errorCount'] === 'number' ? job.result['errorCount'] : job.errors.length;
  return {
    id: job.id,
    type: job.type,
    state: job.state,
    trigger: job.trigger,
    item: names.item(job.itemId),
    vault: names.vault(job.vaultId),
    params: job.params,
    phases: job.phases.map((p) => ({
      name: p.name,
      state: p.state,
      startedAt: iso(p.startedAt ?? null),
      endedAt: iso(p.endedAt ?? null),
      progress: p.progress ?? null,
    })),
    result: job.result,
    errorCount,
    errors: job.errors.slice(0, ERRORS_SHOWN),
    attempts: job.attempts.map((a) => ({
      startedAt: iso(a.startedAt),
      endedAt: iso(a.endedAt),
      outcome: a.outcome,
      error: a.error,
    })),
    retryCount: job.retryCount,
    maxRetries: job.maxRetries,
    runAfter: iso(job.runAfter),
    cancelRequested: job.cancelRequested,
    createdAt: iso(job.createdAt),
    startedAt: iso(job.startedAt),
    endedAt: iso(job.endedAt),
  };
}

export function tokenView(token: TokenRecord, vault: string | null, secret?: string): TokenView {
  return {
    id: token.id,
    name: token.name,
    scope: token.scope,
    vault,
    createdAt: iso(token.createdAt),
    lastUsedAt: iso(token.lastUsedAt),
    revokedAt: iso(token.revokedAt),
    ...(secret !== undefined ? { token: secret } : {}),
  };
}

/** The part of an item's view that depends on what it protects. */
function sourceView(item: ItemRecord): Pick<ItemView, 'paths' | 'excludes' | 'agent' | 'machine'> {
  if (item.workload === 'files')
    return {
      paths: [...item.source.paths],
      excludes: [...item.source.excludes],
      agent: item.source.agent === true,
      machine: null,
    };
  const m = item.source;
  return {
    paths: m.disks.map((d) => d.path),
    excludes: [],
    agent: false,
    machine: {
      disks: m.disks.map((d) => ({ name: d.name, path: d.path })),
      excludeDisks: [...m.excludeDisks],
      configs: [...m.configs],
      preScript: m.scripts?.pre ?? null,
      postScript: m.scripts?.post ?? null,
      continueOnScriptFailure: m.scripts?.continueOnFailure === true,
      freezeCommand: m.freezeCommand ?? null,
      fsfreeze: [...(m.fsfreeze ?? [])],
      qemuMonitor: m.qemuMonitor ?? null,
    },
  };
}
