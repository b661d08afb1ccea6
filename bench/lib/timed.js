// Measured commands: one run under timeout and /usr/bin/time, with its I/O counters and logs.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KiB, LOGS } from './constants.js';
import { fmtAmount, fmtSeconds } from './format.js';
import { log, scrub } from './log.js';
import { syncDisks } from './sh.js';

let stepCounter = 0;

let commandTimeout = 3600;
export const loadSamples = [];

/** Sets how long a measured command may run (--timeout). */
export function setCommandTimeout(seconds) {
  commandTimeout = seconds;
}

/**
 * This process's I/O counters (/proc/self/io), or null where there are none. A reaped child's
 * counters, and those of the children it reaped, are added to its parent's, so the difference
 * across spawnSync is what the whole command read and wrote: rchar counts every byte read()
 * returned (page cache included, holes as zeros), read_bytes only what came from the device.
 */
function ioCounters() {
  try {
    const fields = {};
    for (const line of fs.readFileSync('/proc/self/io', 'utf8').trim().split('\n')) {
      const [key, value] = line.split(':');
      fields[key.trim()] = Number(value);
    }
    return fields;
  } catch {
    return null;
  }
}

/**
 * Runs a command under /usr/bin/time; returns {ok, seconds, rssKiB, cpu, io, stdout, error}, io
 * being what the command and its children read ({rchar, readBytes}, or null).
 */
export function timed(label, cmd, args, { cwd, env }) {
  const base = path.join(LOGS, `${String(++stepCounter).padStart(2, '0')}-${label}`);
  const outFd = fs.openSync(`${base}.out`, 'w');
  const errFd = fs.openSync(`${base}.err`, 'w');
  fs.writeFileSync(`${base}.cmd`, `cd ${scrub(cwd)} && ${[cmd, ...args].map(scrub).join(' ')}\n`);
  let r;
  let io = null;
  try {
    const ioBefore = ioCounters();
    // timeout(1) kills the whole process group, so a hung tool does not stop the run.
    const timeArgs = ['-f', '%e %M %U %S', '-o', `${base}.time`, cmd, ...args];
    r = spawnSync('timeout', ['-k', '30', String(commandTimeout), '/usr/bin/time', ...timeArgs], {
      cwd,
      env,
      stdio: ['ignore', outFd, errFd],
    });
    const ioAfter = ioCounters();
    if (ioBefore && ioAfter)
      io = {
        rchar: ioAfter.rchar - ioBefore.rchar,
        readBytes: ioAfter.read_bytes - ioBefore.read_bytes,
      };
  } finally {
    fs.closeSync(outFd);
    fs.closeSync(errFd);
  }
  loadSamples.push(os.loadavg()[0]);
  syncDisks();
  const stdout = fs.readFileSync(`${base}.out`, 'utf8');
  const stderr = fs.readFileSync(`${base}.err`, 'utf8');
  let seconds = null;
  let rssKiB = null;
  let cpu = null;
  try {
    const lines = fs.readFileSync(`${base}.time`, 'utf8').trim().split('\n');
    const m = /^([\d.]+) (\d+) ([\d.]+) ([\d.]+)$/.exec(lines[lines.length - 1] ?? '');
    if (m) {
      seconds = Number(m[1]);
      rssKiB = Number(m[2]);
      cpu = Number(m[3]) + Number(m[4]);
    }
  } catch {
    // No timing file: /usr/bin/time itself failed; reported below.
  }
  if (r.error || r.status !== 0 || seconds == null) {
    const tail = (stderr.trim() || stdout.trim())
      .split('\n')
      .filter((l) => l.trim())
      .slice(-3)
      .join(' / ');
    const why = r.error
      ? r.error.message
      : r.status === 124 || r.status === 137
        ? `timed out after ${commandTimeout} s`
        : r.signal
          ? `signal ${r.signal}`
          : `exit ${r.status}`;
    const hint =
      r.status === 13 && cmd === process.execPath ? ' (Node: unsettled top-level await)' : '';
    const error = scrub(`${label}: ${why}${hint}: ${tail || 'no output'}`).slice(0, 400);
    log(`  FAILED ${error}`);
    return { ok: false, seconds, rssKiB, cpu, io, stdout, error };
  }
  const read = io ? `, read ${fmtAmount(io.rchar)}` : '';
  log(`  ${label}: ${fmtSeconds(seconds)}, peak RSS ${(rssKiB / KiB).toFixed(0)} MiB${read}`);
  return { ok: true, seconds, rssKiB, cpu, io, stdout };
}
