import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import type { ItemRecord, PointRecord } from '../catalog/index.js';
import { HoldfastError } from '../core/index.js';
import { acquireLock, type VaultLock } from '../engine/index.js';
import {
  openPointFile,
  startNbdExport,
  type DiskReader,
  type NbdExport,
} from '../workloads/index.js';
import type { DiskExportView, DiskImageView, JobView } from './api-model.js';
import { browseMachinePoint, type DiskBrowseAnswer } from './disk-browse.js';
import { machineDescription, refusePartialMachine } from './machine-restore.js';
import { itemPointByRef } from './item-points.js';
import { itemNamed, nameLookup, vaultNamed } from './names.js';
import { openTier, RESTORE_PHASES, type RestoreJobParams } from './restore-job.js';
import { createImagePoint, findImagePoint, imagePoints, imageView } from './disk-images.js';
import { refuseDeletion } from './immutability.js';
import { forgetPointOrRefuse } from './vault-maintenance.js';
import { listPoints } from './resolve-point.js';
import { jobView } from './views.js';
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

  /** Makes a named image from a machine point that has reached the vault. */
  async createImage(name: string, pointRef: string, imageName: string): Promise<DiskImageView> {
    const { item, record } = await this.machinePoint(name, pointRef);
    if (record.vaultRef === null)
      throw new HoldfastError(
        'STATE_CONFLICT',
        `Point ${record.id} is not in the vault yet (only in the snapshot tier); make the image once its transfer is done.`,
      );
    const vaultRecord = await this.vaultOf(item);
    for (const image of await this.listImages())
      if (image.name === imageName)
        throw new HoldfastError(
          'RESOURCE_EXISTS',
          `An image named '${imageName}' already exists (vault '${image.vault}').`,
        );
    const vault = await this.deps.access.open(vaultRecord, { index: 'reading' });
    const source = (await listPoints(vault)).find((p) => p.id === record.vaultRef);
    if (source === undefined)
      throw new HoldfastError(
        'POINT_NOT_FOUND',
        `Point ${record.id} is missing from vault '${vaultRecord.name}'. Run a verify job.`,
      );
    // A template must bring a whole machine back.
    refusePartialMachine('new-machine', await machineDescription(vault, source));
    const made = await createImagePoint(vault, source, imageName, {
      item: item.name,
      point: record.id,
      now: this.deps.clock.now(),
    });
    return imageView(vault, vaultRecord, made);
  }

  /**
   * Deletes an image: its point leaves the vault (its blocks with the next prune of data no
   * other point uses) and its base copy leaves the data directory. Refused on an immutable vault.
   */
  async deleteImage(imageName: string): Promise<DiskImageView> {
    const image = (await this.listImages()).find((i) => i.name === imageName);
    if (image === undefined)
      throw new HoldfastError(
        'RESOURCE_NOT_FOUND',
        `No image named '${imageName}'; list them with 'holdfast image list'.`,
      );
    const record = await vaultNamed(this.deps.catalog, image.vault);
    refuseDeletion(record, `deleting image '${imageName}'`);
    const vault = await this.deps.access.open(record, { index: 'none' });
    const point = await findImagePoint(vault, imageName);
    if (point !== undefined) {
      await forgetPointOrRefuse(vault, point.id, `Image '${imageName}'`);
      await rm(this.deps.access.imageDir(record.id, point.id), { recursive: true, force: true });
    }
    return image;
  }

  /** Every image in the server's vaults (read from the vaults: they hold the images). */
  async listImages(): Promise<DiskImageView[]> {
    const views: DiskImageView[] = [];
    for (const record of await this.deps.catalog.vaults.list()) {
      const vault = await this.deps.access.open(record, { index: 'reading' });
      for (const point of await imagePoints(vault))
        views.push(await imageView(vault, record, point));
    }
    return views.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Queues a deployment of an image as a new machine's disks under `target`. */
  async deployImage(imageName: string, target: string, newName?: string): Promise<JobView> {
    const image = (await this.listImages()).find((i) => i.name === imageName);
    if (image === undefined)
      throw new HoldfastError(
        'RESOURCE_NOT_FOUND',
        `No image named '${imageName}'; list them with 'holdfast image list'.`,
      );
    const vault = await vaultNamed(this.deps.catalog, image.vault);
    const params: RestoreJobParams = {
      point: '',
      image: imageName,
      target,
      ...(newName ? { newName } : {}),
    };
    const job = await this.deps.catalog.jobs.create({
      type: 'restore',
      trigger: 'manual',
      vaultId: vault.id,
      params: { ...params },
      phases: RESTORE_PHASES,
      maxRetries: this.deps.jobRetries,
    });
    this.deps.kick();
    return jobView(job, await nameLookup(this.deps.catalog));
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
    const record = itemPointByRef(points, pointRef, name);
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
