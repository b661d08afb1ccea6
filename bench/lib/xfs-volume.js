// The XFS volume of --fs xfs: an image file with reflink, loop-mounted on bench/work/run.

import fs from 'node:fs';
import path from 'node:path';
import { GiB, RUN, setMirrors, XFS_VOLUME } from './constants.js';
import { fatal, log } from './log.js';
import { rmrf, sh } from './sh.js';

/** Makes an XFS file system with reflink in an image file and mounts it on bench/work/run. */
export function mountXfs() {
  if (typeof process.getuid === 'function' && process.getuid() !== 0)
    fatal('--fs xfs mounts a file system through a loop device: run it as root');
  rmrf(XFS_VOLUME);
  // Sparse: room for the working copy, its restore by a tool, and the mirrors.
  fs.closeSync(fs.openSync(XFS_VOLUME, 'w'));
  fs.truncateSync(XFS_VOLUME, 16 * GiB);
  for (const [cmd, args] of [
    ['mkfs.xfs', ['-q', '-m', 'reflink=1', XFS_VOLUME]],
    ['mount', ['-o', 'loop', XFS_VOLUME, RUN]],
  ]) {
    const r = sh(cmd, args);
    if (r.status !== 0) fatal(`${cmd} ${args.join(' ')} failed: ${r.stderr || r.error?.message}`);
  }
  setMirrors(path.join(RUN, '.mirrors'));
  log(`bench/work/run is an XFS file system with reflink (${XFS_VOLUME}, loop-mounted)`);
}

export function unmountXfs() {
  const r = sh('umount', [RUN]);
  if (r.status !== 0) log(`umount ${RUN} failed: ${r.stderr}`);
  else rmrf(XFS_VOLUME);
}
