// Required programs: checks them and installs missing Debian packages when root.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { QEMU_PROGRAMS } from './constants.js';
import { fatal, log } from './log.js';
import { commandExists } from './sh.js';

/**
 * Installs the Debian packages of missing programs when root; otherwise stops with the command
 * to run. holdfast-qemu's programs are the exception either way: without them (not root, or an
 * install that did not bring them) only that tool is unavailable.
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
  const apt = (args) => {
    const r = spawnSync('apt-get', ['-q', ...args], {
      stdio: ['ignore', 'inherit', 'inherit'],
      env,
    });
    return r.status === 0 ? '' : ` (apt-get ${args[0]}: ${r.error?.message ?? `exit ${r.status}`})`;
  };
  let failed = apt(['update']);
  if (!failed) {
    log(`running apt-get -q install -y --no-install-recommends ${list}`);
    failed = apt(['install', '-y', '--no-install-recommends', ...missing]);
  }
  // Judged by what is present afterwards: holdfast-qemu's programs may stay missing (a failed
  // install included) and cost only that tool, as for a run that is not root.
  const needed = packages(wanted.filter(([p, , optional]) => !optional && !present(p)));
  if (needed.length > 0) fatal(`still missing: ${needed.join(' ')}${failed}`);
  const optional = packages(wanted.filter(([p]) => !present(p)));
  if (optional.length > 0) {
    log(`still missing: ${optional.join(' ')}${failed}; holdfast-qemu is unavailable`);
    return;
  }
  log(`installed: ${list}`);
}
