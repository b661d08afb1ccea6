import { basename } from 'node:path';
import { HoldfastError } from '../../core/index.js';

/** One disk of a machine: an image file (raw or qcow2) or a block device. */
export interface MachineDisk {
  /** Its name in points (`disks/<name>`), unique in the machine: the file name by default. */
  readonly name: string;
  readonly path: string;
}

/** Scripts that quiesce applications around the snapshot (docs/hook-scripts.md). */
export interface MachineScripts {
  readonly pre?: string;
  readonly post?: string;
  /** Seconds each script may run (default 60). */
  readonly timeoutSeconds?: number;
  /** Further attempts of a failing script (default 0). */
  readonly retries?: number;
  /** Take a file-system- or crash-consistent point when the pre script fails (default: fail). */
  readonly continueOnFailure?: boolean;
}

/** What a machine item protects and how it is captured (docs/disks.md). */
export interface MachineSource {
  readonly disks: readonly MachineDisk[];
  /** Disk names left out of points (selective disk backup). */
  readonly excludeDisks: readonly string[];
  /** Configuration files kept beside the disks (e.g. a libvirt domain XML). */
  readonly configs: readonly string[];
  readonly scripts?: MachineScripts;
  /** A command run as `<command> freeze` and `<command> thaw` around the snapshot. */
  readonly freezeCommand?: string;
  /** Mount points frozen with fsfreeze around the snapshot (needs root). */
  readonly fsfreeze?: readonly string[];
  /**
   * The QMP socket of the QEMU running this machine: its dirty bitmaps tell each capture which
   * blocks changed (docs/disks.md "QEMU dirty bitmaps").
   */
  readonly qemuMonitor?: string;
}

const DISK_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/**
 * Builds the disk list from paths, each optionally `name=path`, and checks names and
 * exclusions: unique names, usable as file names, exclusions naming real disks, at least one
 * disk left.
 */
export function machineDisks(specs: readonly string[], excluded: readonly string[]): MachineDisk[] {
  if (specs.length === 0)
    throw new HoldfastError(
      'USAGE_INVALID',
      'A machine needs at least one disk (--disk <image-or-device>).',
    );
  const disks = specs.map((spec) => {
    const at = spec.indexOf('=');
    const named = at > 0 && !spec.slice(0, at).includes('/');
    const path = named ? spec.slice(at + 1) : spec;
    const name = named ? spec.slice(0, at) : basename(path);
    if (!path.startsWith('/'))
      throw new HoldfastError('USAGE_INVALID', `Disk '${spec}' must be an absolute path.`);
    if (!DISK_NAME.test(name))
      throw new HoldfastError(
        'USAGE_INVALID',
        `Disk name '${name}' may use letters, digits, '.', '_' and '-' only; name it with --disk <name>=<path>.`,
      );
    return { name, path };
  });
  const names = new Set<string>();
  for (const d of disks) {
    if (names.has(d.name))
      throw new HoldfastError(
        'USAGE_INVALID',
        `Two disks are named '${d.name}'; name them apart with --disk <name>=<path>.`,
      );
    names.add(d.name);
  }
  for (const name of excluded)
    if (!names.has(name))
      throw new HoldfastError(
        'USAGE_INVALID',
        `--exclude-disk ${name} names no disk of this machine (disks: ${[...names].join(', ')}).`,
      );
  if (disks.every((d) => excluded.includes(d.name)))
    throw new HoldfastError('USAGE_INVALID', 'Every disk is excluded; nothing would be backed up.');
  return disks;
}
