import { HoldfastError, isHoldfastError } from '../core/index.js';
import type { Point, Vault } from '../engine/index.js';
import {
  extractFromExt4,
  openExt4,
  openPointFile,
  readPartitionTable,
  type DiskReader,
  type Ext4Entry,
  type Ext4Volume,
  type PointFile,
} from '../workloads/index.js';
import { machineDescription } from './machine-restore.js';

/** One entry of a browse listing, at any level: disks, partitions, or files in a file system. */
export interface DiskBrowseEntry {
  readonly name: string;
  readonly type: string;
  readonly size: number;
  readonly mode?: number;
  readonly mtime?: string;
  /** Partitions: their kind and file system; symlinks: their target. */
  readonly detail?: string;
}

/** What `browse` shows for a path inside a machine point (docs/disks.md "File-level recovery"). */
export interface DiskBrowseAnswer {
  readonly path: string;
  readonly level: 'machine' | 'disk' | 'filesystem';
  readonly entries: DiskBrowseEntry[];
}

/** A path inside a machine point, opened down to its file system. */
interface Inside {
  readonly disk: PointFile;
  readonly diskName: string;
  /** The part naming a partition (`p1`), when the disk has a table. */
  readonly partition?: string;
  readonly volume?: Ext4Volume;
  /** What is left of the path inside the file system. */
  readonly inner: string;
}

/**
 * Lists what is at `path` inside a machine point, without restoring anything: the disks (empty
 * path), a disk's partitions (`<disk>`), or a directory or file of the file system on a
 * partition (`<disk>/p<N>/<path>`; `<disk>/<path>` for a disk without a partition table).
 */
export async function browseMachinePoint(
  vault: Vault,
  point: Point,
  path: string,
): Promise<DiskBrowseAnswer> {
  const parts = splitPath(path);
  if (parts.length === 0) {
    const description = await machineDescription(vault, point);
    return {
      path: '/',
      level: 'machine',
      entries: description.disks.map((d) => ({ name: d.name, type: 'disk', size: d.size })),
    };
  }
  const disk = await openDisk(vault, point, parts[0]!);
  const table = await readPartitionTable(disk);
  if (table.scheme !== 'none' && parts.length === 1) {
    const entries: DiskBrowseEntry[] = [];
    for (const p of table.partitions) {
      const fs = await fileSystemOf(disk, p.offset);
      entries.push({
        name: `p${p.number}`,
        type: 'partition',
        size: p.size,
        detail: [p.kind ?? `type ${p.type}`, fs ?? 'no file system read'].join(', '),
      });
    }
    return { path: `/${parts[0]}`, level: 'disk', entries };
  }
  const inside = await openInside(vault, point, parts);
  const entry = await inside.volume!.stat(inside.inner);
  const entries =
    entry.type === 'dir' ? (await inside.volume!.list(inside.inner)).map(viewOf) : [viewOf(entry)];
  return { path: `/${parts.join('/')}`, level: 'filesystem', entries };
}

/**
 * Copies files and directories at paths inside a machine point into `target` (each under its
 * own name), reading only the blocks they occupy.
 */
export async function extractFromMachinePoint(
  vault: Vault,
  point: Point,
  paths: readonly string[],
  target: string,
  signal?: AbortSignal,
): Promise<{ files: number; directories: number; bytes: number; warnings: string[] }> {
  // Grouped by file system, each opened once.
  const groups = new Map<string, { parts: string[]; inner: string[] }>();
  for (const path of paths) {
    const parts = splitPath(path);
    if (parts.length === 0)
      throw new HoldfastError('USAGE_INVALID', 'Name a path inside a disk: <disk>/p<N>/<path>.');
    const table = await readPartitionTable(await openDisk(vault, point, parts[0]!));
    const depth = table.scheme === 'none' ? 1 : 2;
    const key = parts.slice(0, depth).join('/');
    const group = groups.get(key) ?? { parts: parts.slice(0, depth), inner: [] };
    group.inner.push(`/${parts.slice(depth).join('/')}`);
    groups.set(key, group);
  }
  const total = { files: 0, directories: 0, bytes: 0, warnings: [] as string[] };
  for (const group of groups.values()) {
    const inside = await openInside(vault, point, group.parts);
    const result = await extractFromExt4(
      inside.volume!,
      group.inner,
      target,
      signal ? { signal } : {},
    );
    total.files += result.files;
    total.directories += result.directories;
    total.bytes += result.bytes;
    for (const w of result.warnings)
      total.warnings.push(`${w.path}: ${w.kind === 'skipped' ? w.reason : w.error.message}`);
  }
  return total;
}

function splitPath(path: string): string[] {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..'))
    throw new HoldfastError(
      'USAGE_INVALID',
      `'..' is not allowed in a path inside a disk: ${path}`,
    );
  return parts;
}

async function openDisk(vault: Vault, point: Point, name: string): Promise<PointFile> {
  try {
    return await openPointFile(vault, point, `disks/${name}`);
  } catch (error) {
    if (isHoldfastError(error, 'POINT_NOT_FOUND'))
      throw new HoldfastError(
        'RESOURCE_NOT_FOUND',
        `This point has no disk named '${name}'; browse it without a path to list its disks.`,
      );
    throw error;
  }
}

/** Opens the file system a path names; the rest of the path is inside it. */
async function openInside(vault: Vault, point: Point, parts: string[]): Promise<Inside> {
  const disk = await openDisk(vault, point, parts[0]!);
  const table = await readPartitionTable(disk);
  let offset = 0;
  let rest = parts.slice(1);
  let partition: string | undefined;
  if (table.scheme !== 'none') {
    partition = parts[1];
    const found = table.partitions.find((p) => `p${p.number}` === partition);
    if (found === undefined)
      throw new HoldfastError(
        'RESOURCE_NOT_FOUND',
        `Disk '${parts[0]}' has no partition '${partition ?? ''}' (it has ${table.partitions.map((p) => `p${p.number}`).join(', ') || 'none'}).`,
      );
    offset = found.offset;
    rest = parts.slice(2);
  }
  const volume = await openExt4(disk, offset);
  return {
    disk,
    diskName: parts[0]!,
    ...(partition !== undefined ? { partition } : {}),
    volume,
    inner: `/${rest.join('/')}`,
  };
}

/** The file system at `offset`, when one this version reads is there. */
async function fileSystemOf(disk: DiskReader, offset: number): Promise<string | undefined> {
  try {
    const volume = await openExt4(disk, offset);
    return `${volume.features.includes('extents') ? 'ext4' : 'ext2/3'}${volume.label ? ` "${volume.label}"` : ''}`;
  } catch {
    return undefined;
  }
}

function viewOf(entry: Ext4Entry): DiskBrowseEntry {
  return {
    name: entry.displayName,
    type: entry.type,
    size: entry.size,
    mode: entry.mode,
    mtime: new Date(entry.mtime).toISOString(),
    ...(entry.linkTarget ? { detail: entry.linkTarget.toString() } : {}),
  };
}
