import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { copyFile, mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { VaultRecord } from '../catalog/index.js';
import { HoldfastError } from '../core/index.js';
import { acquireLock, type Point, type PointManifest, type Vault } from '../engine/index.js';
import type { DiskImageView } from './api-model.js';
import { machineDescription } from './machine-restore.js';
import { listPoints } from './resolve-point.js';

const IMAGE_TAG = 'image:';

/** The image point named `name` in `vault`, if there is one. */
export async function findImagePoint(vault: Vault, name: string): Promise<Point | undefined> {
  return (await listPoints(vault)).find((p) => p.tags.includes(`${IMAGE_TAG}${name}`));
}

/**
 * Makes a named image from a machine point: a point of its own in the same vault, sharing every
 * block with the machine point, tagged `image:<name>`. It is no item's point, so no retention
 * removes it; prune keeps its blocks for as long as it exists.
 */
export async function createImagePoint(
  vault: Vault,
  source: Point,
  name: string,
  origin: { item: string; point: string; now: number },
): Promise<Point> {
  const lock = await acquireLock(vault, {
    exclusive: false,
    purpose: 'backup',
    waitMs: 10 * 60_000,
  });
  try {
    if (await findImagePoint(vault, name))
      throw new HoldfastError('RESOURCE_EXISTS', `An image named '${name}' already exists.`);
    const { id: _id, parent: _parent, ...rest } = source;
    const manifest: PointManifest = {
      ...rest,
      time: new Date(origin.now).toISOString(),
      tags: [`${IMAGE_TAG}${name}`, `image-of:${origin.item}`, `image-from:${origin.point}`],
    };
    const id = await vault.saveObject('point', manifest);
    return { ...manifest, id };
  } finally {
    await lock.release();
  }
}

/** The view of an image point. */
export async function imageView(
  vault: Vault,
  record: VaultRecord,
  point: Point,
): Promise<DiskImageView> {
  const tag = (prefix: string) =>
    point.tags.find((t) => t.startsWith(prefix))?.slice(prefix.length) ?? '';
  const description = await machineDescription(vault, point);
  return {
    name: tag(IMAGE_TAG),
    vault: record.name,
    item: tag('image-of:'),
    fromPoint: tag('image-from:'),
    createdAt: point.time,
    disks: description.disks.map((d) => ({ name: d.name, size: d.size })),
  };
}

/** Image points of a vault. */
export async function imagePoints(vault: Vault): Promise<Point[]> {
  return (await listPoints(vault)).filter((p) => p.tags.some((t) => t.startsWith(IMAGE_TAG)));
}

const run = promisify(execFile);

/**
 * Copies a disk of an image's base copy to a new machine's disk: a clone sharing every block
 * where the file system can (btrfs, XFS), else a sparse copy. Says which it was.
 */
export async function cloneDisk(base: string, target: string): Promise<'cloned' | 'copied'> {
  await rm(target, { force: true });
  try {
    await copyFile(base, target, constants.COPYFILE_FICLONE_FORCE);
    return 'cloned';
  } catch {
    // GNU cp keeps holes (SEEK_DATA); node's copy would fill them.
    await run('cp', ['--sparse=always', base, target]);
    return 'copied';
  }
}

/** True when the base copy of an image is complete (written last by the deploy job). */
export async function baseReady(dir: string): Promise<boolean> {
  return stat(join(dir, '.complete')).then(
    () => true,
    () => false,
  );
}

export async function ensureDir(path: string): Promise<void> {
  await mkdir(path, { recursive: true, mode: 0o700 });
}
