// Constants the benchmark's modules share: sizes, data set profiles, paths under bench/work, tools.

import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

// Bump when the way data sets are built changes: existing data sets are then rebuilt.
export const DATA_VERSION = 1;

export const PROFILES = {
  full: { treeBytes: 1.5 * GiB, imageSize: 4 * GiB, imageDataBlocks: 1024 },
  quick: { treeBytes: 200 * MiB, imageSize: 512 * MiB, imageDataBlocks: 128 },
};
export const TREE_SOURCE = '/usr';
export const TREE_CHANGE_FRACTION = 0.03;
export const IMAGE_CHANGE_FRACTION = 0.02;
export const BLOCK = MiB;
export const MUTATION_MTIME = Date.UTC(2024, 5, 1, 12, 0, 0) / 1000;

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const WORK = path.join(ROOT, 'bench', 'work');
export const RUN = path.join(WORK, 'run');
export const VAULTS = path.join(WORK, 'vaults');
export const RESTORES = path.join(WORK, 'restore');
export const LOGS = path.join(WORK, 'logs');
export const TARS = path.join(WORK, 'tar');
export const HOME = path.join(WORK, 'home');
export const CACHE = path.join(WORK, 'cache');
// Where the machine path keeps its mirrors (one directory per tool): beside the working copy, so
// that on a file system that clones (--fs xfs) the capture can clone the image.
export let MIRRORS = path.join(WORK, 'mirrors');
/** The XFS volume (an image file) mounted on bench/work/run by --fs xfs. */
export const XFS_VOLUME = path.join(WORK, 'xfs-volume.img');
export const HOLDFAST_BIN = path.join(ROOT, 'bin', 'holdfast.js');
export const HOLDFAST_MAIN = path.join(ROOT, 'dist', 'cli', 'main.js');
export const MACHINE_SCRIPT = path.join(ROOT, 'bench', 'machine-backup.js');
export const MACHINE_MAIN = path.join(ROOT, 'dist', 'app', 'machine-backup.js');
export const PASSWORD = 'holdfast-bench-passphrase';
// holdfast-machine backs the disk image up through the machine path (bench/machine-backup.js);
// holdfast-qemu too, with the image served by qemu-storage-daemon, whose dirty bitmaps tell the
// capture what changed. Both take part in the image data set only.
export const ALL_TOOLS = ['holdfast', 'holdfast-machine', 'holdfast-qemu', 'restic', 'borg'];
export const HOLDFAST_TOOLS = ['holdfast', 'holdfast-machine', 'holdfast-qemu'];
// What holdfast-qemu runs, and the Debian packages they come in.
export const QEMU_PROGRAMS = [
  ['qemu-storage-daemon', 'qemu-system-common'],
  ['qemu-io', 'qemu-utils'],
];

/** Moves the machine path's mirrors (--fs xfs puts them on the XFS volume); MIRRORS follows. */
export function setMirrors(dir) {
  MIRRORS = dir;
}
