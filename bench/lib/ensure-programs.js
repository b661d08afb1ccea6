// Required programs: checks them and installs missing Debian packages when root.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { QEMU_PROGRAMS } from './constants.js';
import { fatal, log } from './log.js';
import { commandExists } from './sh.js';

/**
 * Installs the Debian packages of missing programs when root; otherwise stops with the command
 * to run, except for holdfast-qemu's programs: without them only that tool is unavailable.
 */
export function ensurePrograms(tools, fsType) {
  // [program, Debian package, whether the run can go on without it]
  const wanted = [['/usr/bin/time', 'time']];
  if (tools.includes('restic')) wanted.push(['restic', 'restic']);
  if (tools.includes('borg')) wanted.push(['borg', 'borgbackup']);
  if (tools.includes('holdfast-qemu')) wanted.push(...QEMU_PROGRAMS.map((p) => [...p, true]));
  if (fsType === 'xfs') wanted.push(['mkfs.xfs', 'xfsprogs']);
  const present = (p) => (p.startsWith('/') ? fs.existsSync(p) : commandExists(p));
  const packages = (entries) => [...new Set(entries.map(([, pkg]) => pkg))];
  const missing = packages(wanted.filter(([p]) => !present(p)));
  if (missing.length === 0) {
    log(`programs present: ${wanted.map(([p]) => p).join(', ')}`);
    return;
  }
  const list = missing.join(' ');
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    const needed = packages(wanted.filter(([p, , optional]) => !optional && !present(p)));
    if (needed.length > 0)
      fatal(`missing Debian packages: ${list}. Install them with: sudo apt-get install ${list}`);
    log(`missing Debian packages: ${list}; holdfast-qemu is unavailable`);
    return;
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  log(`missing packages: ${list}; running apt-get update`);
  let r = spawnSync('apt-get', ['-q', 'update'], { stdio: ['ignore', 'inherit', 'inherit'], env });
  if (r.status !== 0) fatal(`apt-get update failed (${r.error?.message ?? `exit ${r.status}`})`);
  log(`running apt-get -q install -y --no-install-recommends ${list}`);
  r = spawnSync('apt-get', ['-q', 'install', '-y', '--no-install-recommends', ...missing], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env,
  });
  if (r.status !== 0) {
    fatal(`apt-get install ${list} failed (${r.error?.message ?? `exit ${r.status}`})`);
  }
  const still = packages(wanted.filter(([p]) => !present(p)));
  if (still.length > 0) fatal(`still missing after apt-get install: ${still.join(' ')}`);
  log(`installed: ${list}`);
}
