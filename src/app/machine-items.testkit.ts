import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../core/index.js';
import { ensureCommand } from '../core/os-tools.testkit.js';
import { randomBytesSeeded } from '../engine/engine.testkit.js';
import { ControlPlane } from './control-plane.js';

/** A real ext4 image of `mib` MiB populated from a directory of seeded files. */
export function ext4Image(dir: string, path: string, mib: number, seed: number): void {
  ensureCommand('mke2fs', 'e2fsprogs');
  const content = join(dir, `content-${seed}`);
  mkdirSync(join(content, 'etc'), { recursive: true });
  writeFileSync(join(content, 'etc', 'hostname'), `machine-${seed}\n`);
  writeFileSync(join(content, 'data.bin'), randomBytesSeeded(2 * 1024 * 1024, seed));
  execFileSync('mke2fs', ['-q', '-t', 'ext4', '-F', '-d', content, path, `${mib}M`], {
    stdio: 'pipe',
  });
}

/** Writes a file into an ext4 image with debugfs (no mount needed). */
export function writeIntoImage(image: string, from: string, name: string): void {
  execFileSync('debugfs', ['-w', '-R', `write ${from} ${name}`, image], { stdio: 'pipe' });
}

/** A hook script: root-owned, mode 0755, in a directory only root can write. */
export function hookScript(dir: string, name: string, body: string): string {
  const scripts = join(dir, 'scripts');
  if (!existsSync(scripts)) mkdirSync(scripts, { mode: 0o755 });
  const path = join(scripts, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

/** A libvirt-style domain description naming the disks. */
export function domainXml(name: string, disks: readonly string[]): string {
  return [
    `<domain type='kvm'>`,
    `  <name>${name}</name>`,
    `  <uuid>6f1e1c2a-0000-4000-8000-00000000beef</uuid>`,
    ...disks.map((d) => `  <disk type='file' device='disk'><source file='${d}'/></disk>`),
    `  <interface type='network'><mac address='52:54:00:aa:bb:cc'/></interface>`,
    `</domain>`,
    '',
  ].join('\n');
}

/**
 * A process that writes an increasing counter at offset 0 of two disks, first `a` then `b`,
 * as fast as it can. On SIGUSR2 it finishes the pair it is writing, pauses and writes
 * `<ack>`; on SIGHUP it resumes: the freeze a guest agent gives a hypervisor, in small.
 */
export function counterWriter(a: string, b: string, ack: string): ChildProcess {
  const program = `
    const fs = require('node:fs');
    const [a, b, ack] = process.argv.slice(1);
    const fa = fs.openSync(a, 'r+'), fb = fs.openSync(b, 'r+');
    const buf = Buffer.alloc(8);
    let n = 0, paused = false;
    process.on('SIGUSR2', () => { paused = true; fs.writeFileSync(ack, String(n)); });
    process.on('SIGHUP', () => { paused = false; fs.rmSync(ack, { force: true }); setImmediate(step); });
    function step() {
      if (paused) return;
      for (let i = 0; i < 50; i++) {
        n += 1;
        buf.writeBigUInt64LE(BigInt(n));
        fs.writeSync(fa, buf, 0, 8, 0);
        fs.writeSync(fb, buf, 0, 8, 0);
      }
      setImmediate(step);
    }
    // Paused, nothing else would keep it alive.
    setInterval(() => undefined, 1000);
    step();
  `;
  return spawn(process.execPath, ['-e', program, a, b, ack], { stdio: 'ignore' });
}

const planes: ControlPlane[] = [];
const dirs: string[] = [];

/** Stops the control planes and removes the directories that {@link machinePlane} made. */
export async function cleanUpPlanes(): Promise<void> {
  for (const plane of planes.splice(0)) await plane.stop().catch(() => undefined);
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/**
 * A control plane in a fresh directory, with vault `main` and policy `nightly`, its clock at
 * Monday 2026-01-05 00:30 UTC. `jobRetries: 0` makes a failed job fail at once.
 */
export async function machinePlane(options: { jobRetries?: number; root?: string } = {}) {
  const root = options.root ?? mkdtempSync(join(tmpdir(), 'holdfast-machine-'));
  if (options.root === undefined) dirs.push(root);
  const clock = new ManualClock(Date.UTC(2026, 0, 5, 0, 30));
  const plane = await ControlPlane.open({
    dataDir: join(root, 'data'),
    clock,
    retry: { baseDelayMs: 60_000, maxDelayMs: 60_000 },
    ...(options.jobRetries !== undefined ? { jobRetries: options.jobRetries } : {}),
  });
  planes.push(plane);
  await plane.vaults.create({ name: 'main', passphrase: 'a long test passphrase' });
  await plane.policies.create({
    name: 'nightly',
    schedule: 'daily 02:00',
    snapshotDays: 2,
    retention: { daily: 7 },
  });
  return { root, clock, plane };
}
