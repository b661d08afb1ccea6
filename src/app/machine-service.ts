import { randomBytes } from 'node:crypto';
import type { ItemRecord, PointRecord } from '../catalog/index.js';
import { HoldfastError } from '../core/index.js';
import { acquireLock, type VaultLock } from '../engine/index.js';
import {
  openPointFile,
  startNbdExport,
  type DiskReader,
  type NbdExport,
} from '../workloads/index.js';
import type { DiskExportView } from './api-model.js';
import { browseMachinePoint, type DiskBrowseAnswer } from './disk-browse.js';
import { machineDescription } from './machine-restore.js';
import { itemNamed } from './names.js';
import { openTier } from './restore-job.js';
import type { ServiceDeps } from './service-deps.js';

interface LiveExport {
  readonly view: DiskExportView;
  readonly server: NbdExport;
  readonly lock: VaultLock;
  readonly timer: NodeJS.Timeout;
}

/** How long an export stays up unless stopped: long enough to copy files out, not forever. */
const DEFAULT_EXPORT_HOURS = 4;

/**
 * File-level recovery from machine points: browsing inside their disks and exporting them as
 * read-only block devices. An export holds a shared lock on the vault, so no prune removes the
 * data it serves while it is up.
 */
export class MachineService {
  private readonly exports = new Map<string, LiveExport>();

  constructor(private readonly deps: ServiceDeps) {}

  async browse(name: string, pointRef: string, path: string): Promise<DiskBrowseAnswer> {
    const { item, record } = await this.machinePoint(name, pointRef);
    const source = await openTier(this.deps, await this.vaultOf(item), record, 'auto');
    return browseMachinePoint(source.vault, source.point, path);
  }

  async startExport(
    name: string,
    pointRef: string,
    hours = DEFAULT_EXPORT_HOURS,
  ): Promise<DiskExportView> {
    const { item, record } = await this.machinePoint(name, pointRef);
    const source = await openTier(this.deps, await this.vaultOf(item), record, 'auto');
    const lock = await acquireLock(source.vault, {
      exclusive: false,
      purpose: 'restore',
      waitMs: 60_000,
    });
    try {
      const description = await machineDescription(source.vault, source.point);
      const disks = new Map<string, DiskReader>();
      for (const d of description.disks)
        disks.set(d.name, await openPointFile(source.vault, source.point, `disks/${d.name}`));
      const server = await startNbdExport({ disks });
      const id = `exp_${randomBytes(8).toString('hex')}`;
      const now = this.deps.clock.now();
      const view: DiskExportView = {
        id,
        item: item.name,
        point: record.id,
        host: server.host,
        port: server.port,
        urls: Object.fromEntries([...disks.keys()].map((d) => [d, server.url(d)])),
        startedAt: new Date(now).toISOString(),
        expiresAt: new Date(now + hours * 3_600_000).toISOString(),
      };
      const timer = setTimeout(
        () => void this.stopExport(id).catch(() => undefined),
        hours * 3_600_000,
      );
      timer.unref();
      this.exports.set(id, { view, server, lock, timer });
      return view;
    } catch (error) {
      await lock.release();
      throw error;
    }
  }

  listExports(): DiskExportView[] {
    return [...this.exports.values()].map((e) => e.view);
  }

  async stopExport(id: string): Promise<DiskExportView> {
    const live = this.exports.get(id);
    if (live === undefined)
      throw new HoldfastError(
        'RESOURCE_NOT_FOUND',
        `No export ${id}; list them with 'holdfast export list'.`,
      );
    this.exports.delete(id);
    clearTimeout(live.timer);
    await live.server.close();
    await live.lock.release();
    return live.view;
  }

  /** Ends every export (the server is stopping). */
  async close(): Promise<void> {
    for (const id of [...this.exports.keys()]) await this.stopExport(id).catch(() => undefined);
  }

  private async machinePoint(
    name: string,
    pointRef: string,
  ): Promise<{ item: ItemRecord; record: PointRecord }> {
    const item = await itemNamed(this.deps.catalog, name);
    if (item.workload !== 'machine')
      throw new HoldfastError(
        'USAGE_INVALID',
        `'${name}' protects files, not a machine: list its files with 'holdfast ls' instead.`,
      );
    const points = await this.deps.catalog.points.forItem(item.id);
    const record = pointRef === 'latest' ? points.at(-1) : points.find((p) => p.id === pointRef);
    if (record === undefined)
      throw new HoldfastError(
        'POINT_NOT_FOUND',
        pointRef === 'latest'
          ? `Machine '${name}' has no recovery point yet.`
          : `Machine '${name}' has no point ${pointRef}; list them with 'holdfast points ${name}'.`,
      );
    return { item, record };
  }

  private async vaultOf(item: ItemRecord) {
    const vault = await this.deps.catalog.vaults.byId(item.vaultId);
    if (vault === undefined)
      throw new HoldfastError(
        'RESOURCE_NOT_FOUND',
        `The vault of '${item.name}' no longer exists.`,
      );
    return vault;
  }
}
