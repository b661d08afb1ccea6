// The page cache before a measured command: warm reads, dropping it, and fresh working copies.

import fs from 'node:fs';
import path from 'node:path';
import { MiB } from './constants.js';
import { fatal, log, scrub } from './log.js';
import { rmrf, sh, syncDisks } from './sh.js';

/** Reads every file of a tree once so that all tools start from a warm page cache. */
export function warmTree(root) {
  const buf = Buffer.allocUnsafe(4 * MiB);
  const walk = (dir) => {
    for (const d of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, d.name);
      if (d.isDirectory()) walk(p);
      else if (d.isFile()) warmFile(p, buf);
    }
  };
  walk(root);
}

export function warmFile(file, buf = Buffer.allocUnsafe(4 * MiB)) {
  const fd = fs.openSync(file, 'r');
  try {
    while (fs.readSync(fd, buf, 0, buf.length, null) > 0);
  } finally {
    fs.closeSync(fd);
  }
}

let dropCachesWarned = false;

/**
 * Before a timed command that creates many files (a restore, `tar -x`): writes back and drops
 * the page cache, then reads `inputs` back into it: what the command reads (a vault, a tar file)
 * and the data set, which the next tool's backup expects warm. The command thus reads warm and
 * creates files on a fresh cache. Measured on this kind of VM (ext4 without a journal),
 * creating a file gets slower with what earlier runs left in the page cache: `tar -x` of the
 * tree took 1.4 s after a drop and 5 to 14 s after a few creations and removals without one
 * (kernel profile: inode allocation's `recently_deleted` check looking up buffer heads), so
 * without the drop a restore's time depended on which tool ran before it. Needs root to write
 * `/proc/sys/vm/drop_caches`; otherwise says so once and goes on without it.
 */
export function freshPageCache(inputs) {
  syncDisks();
  try {
    fs.writeFileSync('/proc/sys/vm/drop_caches', '1');
  } catch (e) {
    if (!dropCachesWarned)
      log(
        `  note: cannot drop the page cache (${e.code ?? e.message}): restore times depend on the runs before them`,
      );
    dropCachesWarned = true;
  }
  for (const input of inputs) {
    if (fs.statSync(input).isDirectory()) warmTree(input);
    else warmFile(input);
  }
}

export function freshCopy(src, dst) {
  rmrf(dst);
  fs.mkdirSync(path.dirname(dst), { recursive: true });
  const r = sh('cp', ['-a', '--reflink=auto', '--sparse=always', src, dst]);
  if (r.status !== 0) fatal(`cp -a ${scrub(src)} failed: ${scrub(r.stderr)}`);
  syncDisks();
}
