/**
 * A machine through the real CLI and server, with the command names operators use: protect
 * --machine, backup-now, restore --as disks|new-machine, browse, extract, disk snapshot, image
 * create and deploy — each with --json.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureCommand } from '../../src/core/os-tools.testkit.js';
import { killStartedProcesses, PASSPHRASE, writeSeededFile } from './cli.testkit.js';
import { createDailyPolicy, startServer, type ServerProcess } from './server.testkit.js';

let root: string;
let server: ServerProcess;
let disk: string;

interface Job {
  id: string;
  state: string;
  result: Record<string, unknown> | null;
}

beforeAll(async () => {
  ensureCommand('mke2fs', 'e2fsprogs');
  root = mkdtempSync(join(tmpdir(), 'holdfast-machines-e2e-'));
  const content = join(root, 'content');
  mkdirSync(join(content, 'etc'), { recursive: true });
  writeFileSync(join(content, 'etc', 'hostname'), 'web01\n');
  writeSeededFile(join(content, 'app.bin'), 1_000_000, 'machines-e2e');
  disk = join(root, 'web01.img');
  execFileSync('mke2fs', ['-q', '-t', 'ext4', '-F', '-d', content, disk, '24M'], { stdio: 'pipe' });
  writeFileSync(
    join(root, 'web01.xml'),
    `<domain><name>web01</name><uuid>0f0f0f0f-1111-4222-8333-444444444444</uuid><disk><source file='${disk}'/></disk></domain>\n`,
  );
  server = await startServer(join(root, 'data'), { fakeClock: '2026-03-02T00:30:00Z' });
  await server.json(['vault', 'create', 'main', '--location', join(root, 'vault')], {
    HOLDFAST_PASSWORD: PASSPHRASE,
  });
  await createDailyPolicy(server, 'nightly');
}, 600_000);

afterAll(async () => {
  await server?.stop();
  killStartedProcesses();
  rmSync(root, { recursive: true, force: true });
});

describe('machines through the CLI', () => {
  it('protects, backs up, restores, browses, extracts, snapshots and deploys', async () => {
    const item = await server.json<{
      workload: string;
      machine: { disks: Array<{ name: string }> };
    }>([
      'protect',
      '--machine',
      '--disk',
      disk,
      '--config',
      join(root, 'web01.xml'),
      '--vault',
      'main',
      '--policy',
      'nightly',
      '--name',
      'web01',
    ]);
    expect(item.workload).toBe('machine');
    expect(item.machine.disks.map((d) => d.name)).toEqual(['web01.img']);

    const backup = await server.json<Job>(['backup-now', 'web01', '--wait']);
    expect(backup.state).toBe('completed');
    expect(backup.result?.['consistency']).toBe('crash');

    const asDisks = join(root, 'as-disks');
    const restored = await server.json<Job>([
      'restore',
      'web01',
      '--point',
      'latest',
      '--as',
      'disks',
      '--target',
      asDisks,
      '--wait',
    ]);
    expect(restored.state).toBe('completed');
    expect(readFileSync(join(asDisks, 'disks', 'web01.img')).equals(readFileSync(disk))).toBe(true);

    const asNew = join(root, 'web02');
    const created = await server.json<Job>([
      'restore',
      'web01',
      '--point',
      'latest',
      '--as',
      'new-machine',
      '--new-name',
      'web02',
      '--target',
      asNew,
      '--wait',
    ]);
    expect(created.state).toBe('completed');
    expect(readFileSync(join(asNew, 'config', 'web01.xml'), 'utf8')).toContain(
      '<name>web02</name>',
    );

    const listing = await server.json<{ entries: Array<{ name: string; type: string }> }>([
      'browse',
      'web01',
      'web01.img/etc',
      '--point',
      'latest',
    ]);
    expect(listing.entries).toEqual([expect.objectContaining({ name: 'hostname', type: 'file' })]);
    const extracted = join(root, 'extracted');
    const extract = await server.json<Job>([
      'extract',
      'web01',
      'web01.img/etc/hostname',
      '--target',
      extracted,
      '--wait',
    ]);
    expect(extract.state).toBe('completed');
    expect(readFileSync(join(extracted, 'hostname'), 'utf8')).toBe('web01\n');

    const snapshot = await server.json<Job>([
      'disk',
      'snapshot',
      disk,
      '--name',
      'web01-before',
      '--vault',
      'main',
      '--keep-days',
      '7',
      '--wait',
    ]);
    expect(snapshot.state).toBe('completed');
    const snapshots = await server.list<{ name: string; disk: string }>(['disk', 'snapshots']);
    expect(snapshots.map((s) => [s.name, s.disk])).toEqual([['web01-before', disk]]);

    const image = await server.json<{ name: string; item: string }>([
      'image',
      'create',
      'web01',
      '--point',
      'latest',
      '--name',
      'web-template',
    ]);
    expect(image).toMatchObject({ name: 'web-template', item: 'web01' });
    const deployed = join(root, 'web03');
    const deploy = await server.json<Job>([
      'image',
      'deploy',
      'web-template',
      '--target',
      deployed,
      '--new-name',
      'web03',
      '--wait',
    ]);
    expect(deploy.state).toBe('completed');
    expect(readFileSync(join(deployed, 'disks', 'web01.img')).equals(readFileSync(disk))).toBe(
      true,
    );

    // Bad input gets a clear error and a usage exit code.
    const refused = await server.cli([
      'restore',
      'web01',
      '--point',
      'latest',
      '--as',
      'sideways',
      '--target',
      asDisks,
    ]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/--as takes disks, replace or new-machine/);
  });
});
