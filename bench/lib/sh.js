// Process and file helpers: spawnSync with defaults, command lookup, rm -rf, sync, du.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { MiB } from './constants.js';

export function sh(cmd, args, options = {}) {
  return spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * MiB, ...options });
}

export function commandExists(name) {
  return sh('sh', ['-c', `command -v ${name}`]).status === 0;
}

export function firstLine(cmd, args) {
  const r = sh(cmd, args);
  if (r.status !== 0 || r.error) return null;
  return (r.stdout || r.stderr).trim().split('\n')[0];
}

export function rmrf(p) {
  fs.rmSync(p, { recursive: true, force: true });
}

export function syncDisks() {
  sh('sync', []);
}

export function duBytes(p, args) {
  const r = sh('du', [...args, p]);
  if (r.status !== 0) return null;
  return Number(r.stdout.trim().split(/\s+/)[0]);
}
