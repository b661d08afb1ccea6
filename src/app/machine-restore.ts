import { randomBytes, randomUUID } from 'node:crypto';
import {
  mkdir,
  readFile,
  readdir,
  readlink,
  realpath,
  rename,
  stat,
  writeFile,
} from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { HoldfastError } from '../core/index.js';
import type { RestoreInput } from './api-model.js';
import type { MachineRestoreMode, RestoreJobParams } from './restore-params.js';
import type { Point, Vault } from '../engine/index.js';
import { openPointFile, readGuestPieces, readPointFile, writeQcow2 } from '../workloads/index.js';
import type { MachineDescription } from './machine-backup.js';

/** The description stored in a machine point; VAULT_INTEGRITY when it is missing or malformed. */
export async function machineDescription(vault: Vault, point: Point): Promise<MachineDescription> {
  const raw = await readPointFile(vault, point, 'machine.json');
  let parsed: MachineDescription;
  try {
    parsed = JSON.parse(raw.toString('utf8')) as MachineDescription;
  } catch {
    parsed = {} as MachineDescription;
  }
  if (parsed.v !== 1 || !Array.isArray(parsed.disks))
    throw new HoldfastError(
      'VAULT_INTEGRITY',
      `The machine description in point ${point.id.slice(0, 12)} is malformed.`,
    );
  return parsed;
}

/**
 * Refuses modes that would bring a machine back incomplete: a point taken with disks left out
 * can only restore its disks (as Azure does).
 */
export function refusePartialMachine(
  mode: MachineRestoreMode,
  description: MachineDescription,
): void {
  if (mode === 'disks' || mode === 'files' || description.excludedDisks.length === 0) return;
  throw new HoldfastError(
    'USAGE_INVALID',
    `This point left out disk(s) ${description.excludedDisks.map((d) => d.name).join(', ')}: it can only be restored --as disks.`,
  );
}

/**
 * Writes a point's disks as qcow2 images `dir/disks/<name>.qcow2`, straight from the vault:
 * only stored data is read and written, holes stay unallocated clusters.
 */
export async function restoreQcow2Disks(
  vault: Vault,
  point: Point,
  dir: string,
  names: readonly string[],
  signal?: AbortSignal,
): Promise<number> {
  await mkdir(join(dir, 'disks'), { recursive: true });
  let bytes = 0;
  for (const name of names) {
    const file = await openPointFile(vault, point, `disks/${name}`);
    const pieces = readGuestPieces(file, file.dataRanges(), signal ? { signal } : {});
    await writeQcow2(
      join(dir, 'disks', `${name}.qcow2`),
      file.size,
      pieces,
      signal ? { signal } : {},
    );
    bytes += file.size;
  }
  return bytes;
}

/** What a new machine's configuration had changed. */
export interface Reidentified {
  readonly file: string;
  readonly changes: string[];
}

/**
 * Rewrites a libvirt-style domain XML for a new machine: its name, a fresh UUID, fresh MAC
 * addresses (in the locally administered 52:54:00 range QEMU uses), and disk sources pointing
 * at the restored disks, in the format they were restored in (`<driver type=…>`; a block
 * device's disk becomes a file disk). Other files are copied unchanged. Returns what changed.
 */
export function reidentifyConfig(
  text: string,
  newName: string,
  disks: ReadonlyMap<string, string>,
  format: 'raw' | 'qcow2',
): { text: string; changes: string[] } {
  const changes: string[] = [];
  let out = text.replace(/<name>[^<]*<\/name>/, (found) => {
    changes.push(`name ${found.slice(6, -7)} → ${newName}`);
    return `<name>${escapeXml(newName)}</name>`;
  });
  out = out.replace(/<uuid>[^<]*<\/uuid>/, (found) => {
    const uuid = randomUUID();
    changes.push(`uuid ${found.slice(6, -7)} → ${uuid}`);
    return `<uuid>${uuid}</uuid>`;
  });
  out = out.replace(
    /<mac address=(['"])([0-9A-Fa-f:]{17})\1/g,
    (_found, quote: string, old: string) => {
      const mac = `52:54:00:${[...randomBytes(3)].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
      changes.push(`mac ${old} → ${mac}`);
      return `<mac address=${quote}${mac}${quote}`;
    },
  );
  // Each <disk> element whose source was restored: the source becomes the restored file (a
  // block device's disk becomes a file disk) and the driver's type the restored format.
  out = out.replace(/<disk\b[^>]*>[\s\S]*?<\/disk>/g, (element) => {
    const source = /<source (file|dev)=(['"])([^'"]+)\2/.exec(element);
    const restored = source ? disks.get(source[3]!) : undefined;
    if (source === null || restored === undefined) return element;
    changes.push(`disk ${source[3]} → ${restored}`);
    let disk = element.replace(
      source[0],
      `<source file=${source[2]}${escapeXml(restored)}${source[2]}`,
    );
    disk = disk.replace(/^<disk\b[^>]*>/, (open) =>
      open.replace(/\btype=(['"])block\1/, 'type=$1file$1'),
    );
    return disk.replace(/(<driver\b[^>]*\btype=)(['"])[^'"]*\2/, (_m, head: string, q: string) => {
      return `${head}${q}${format}${q}`;
    });
  });
  return { text: out, changes };
}

function escapeXml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/'/g, '&apos;')
    .replace(/"/g, '&quot;');
}

/** Rewrites every restored configuration file of a new machine in place. */
export async function reidentifyConfigs(
  dir: string,
  newName: string,
  description: MachineDescription,
  diskPath: (name: string) => string,
  format: 'raw' | 'qcow2',
): Promise<Reidentified[]> {
  const disks = new Map(description.disks.map((d) => [d.source, diskPath(d.name)]));
  const done: Reidentified[] = [];
  for (const name of description.configs) {
    const path = join(dir, 'config', name);
    const { text, changes } = reidentifyConfig(
      await readFile(path, 'utf8'),
      newName,
      disks,
      format,
    );
    if (changes.length > 0) await writeFile(path, text);
    done.push({ file: name, changes });
  }
  return done;
}

/**
 * Processes that have one of `paths` open, found through /proc (as root: every process): a
 * machine whose disks are open is taken to be running, and its disks are not replaced under it.
 */
export async function processesUsing(
  paths: readonly string[],
): Promise<Array<{ pid: number; path: string }>> {
  // Open files show in /proc under their real path: a disk named through a symbolic link (an
  // LVM volume's /dev/vg/lv is one, to /dev/dm-N) must be looked for under its target.
  const wanted = new Map<string, string>();
  for (const path of paths) {
    wanted.set(path, path);
    wanted.set(await realpath(path).catch(() => path), path);
  }
  const found: Array<{ pid: number; path: string }> = [];
  let pids: string[];
  try {
    pids = (await readdir('/proc')).filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid);
  } catch {
    return found;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = await readdir(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      const disk = wanted.get(target);
      if (disk !== undefined) found.push({ pid: Number(pid), path: disk });
    }
  }
  return found;
}

/**
 * Puts a restored disk file in place of the machine's disk: renamed over it (atomic, in the
 * same directory). Block devices are not replaced this way (see docs/disks.md).
 */
export async function replaceDiskFile(restored: string, original: string): Promise<void> {
  const s = await stat(original).catch(() => undefined);
  if (s?.isBlockDevice())
    throw new HoldfastError(
      'USAGE_INVALID',
      `${original} is a block device; replacing block devices in place is not supported yet. Restore --as disks and copy the disk onto the device.`,
    );
  await mkdir(dirname(original), { recursive: true });
  await rename(restored, original);
}

/** Where and how a machine point is restored, checked: each mode takes only its own options. */
export function machineRestoreShape(
  input: RestoreInput,
): Pick<RestoreJobParams, 'target' | 'as' | 'format' | 'newName' | 'force' | 'paths'> {
  const as = input.as ?? 'disks';
  if (input.include !== undefined || input.exclude !== undefined)
    throw new HoldfastError(
      'USAGE_INVALID',
      'A machine point restores whole disks: --include and --exclude do not apply (browse and extract files instead).',
    );
  if (as === 'replace') {
    if (input.target !== undefined || input.format !== undefined)
      throw new HoldfastError(
        'USAGE_INVALID',
        'A restore --as replace writes over the machine’s own disks: it takes no target and no format.',
      );
    return { as, ...(input.force ? { force: true } : {}) };
  }
  if (input.target === undefined)
    throw new HoldfastError('USAGE_INVALID', `A restore --as ${as} needs a target directory.`);
  if ((as === 'files') !== (input.paths !== undefined))
    throw new HoldfastError(
      'USAGE_INVALID',
      as === 'files'
        ? 'Extracting files needs the paths inside the disks (<disk>/p<N>/<path>).'
        : 'Paths inside disks are for extracting files (as: files).',
    );
  if (as === 'files') {
    if (input.format || input.newName || input.force || input.verify)
      throw new HoldfastError('USAGE_INVALID', 'Extracting files takes only paths and a target.');
    return { target: input.target, as, paths: input.paths! };
  }
  if (input.force !== undefined)
    throw new HoldfastError('USAGE_INVALID', '--force is for restores --as replace.');
  if ((as === 'new-machine') !== (input.newName !== undefined))
    throw new HoldfastError(
      'USAGE_INVALID',
      as === 'new-machine'
        ? 'A restore --as new-machine needs --new-name.'
        : '--new-name is for restores --as new-machine.',
    );
  if (input.verify === true && (as === 'new-machine' || input.format === 'qcow2'))
    throw new HoldfastError(
      'USAGE_INVALID',
      '--verify compares restored files with the point byte for byte: not possible for qcow2 images or a new machine’s changed configuration.',
    );
  return {
    target: input.target,
    as,
    ...(input.format ? { format: input.format } : {}),
    ...(input.newName ? { newName: input.newName } : {}),
  };
}
