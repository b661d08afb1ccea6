import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ensureCommand } from '../core/os-tools.testkit.js';
import { randomBytesSeeded } from '../engine/engine.testkit.js';
import { gptImage } from '../workloads/disk-images.testkit.js';
import { cleanUpPlanes, machinePlane } from './machine-items.testkit.js';

// The export is served by this process: its clients must not block the event loop.
const run = promisify(execFile);
const LINUX = '0FC63DAF-8483-4772-8E79-3D69D8477DE4';
beforeAll(() => {
  ensureCommand('mke2fs', 'e2fsprogs');
  ensureCommand('qemu-img', 'qemu-utils');
}, 600_000);
afterEach(cleanUpPlanes);

/** A 40 MiB disk with a GPT whose one Linux partition holds a populated ext4. */
function partitionedDisk(root: string): { disk: string; content: string } {
  const content = join(root, 'content');
  mkdirSync(join(content, 'etc', 'app'), { recursive: true });
  writeFileSync(join(content, 'etc', 'hostname'), 'db01\n');
  writeFileSync(join(content, 'etc', 'app', 'settings.conf'), 'port = 5432\n');
  writeFileSync(join(content, 'data.bin'), randomBytesSeeded(1_500_000, 11));
  const disk = join(root, 'db01.img');
  const first = 2048;
  const last = first + 32 * 2048 - 1;
  writeFileSync(
    disk,
    gptImage(last + 1 + 4096, [
      { type: LINUX, uuid: '0A0B0C0D-0E0F-4000-8000-000000000009', first, last, name: 'root' },
    ]),
  );
  execFileSync(
    'mke2fs',
    [
      '-q',
      '-t',
      'ext4',
      '-F',
      '-L',
      'dbroot',
      '-d',
      content,
      '-E',
      `offset=${first * 512}`,
      disk,
      `${32 * 1024}k`,
    ],
    { stdio: 'pipe' },
  );
  return { disk, content };
}

async function setup() {
  const { root, plane } = await machinePlane({ jobRetries: 0 });
  const { disk, content } = partitionedDisk(root);
  await plane.items.protect({
    name: 'db01',
    workload: 'machine',
    machine: { disks: [`root=${disk}`] },
    vault: 'main',
    policy: 'nightly',
  });
  const job = await plane.items.backupNow('db01');
  await plane.settle();
  expect((await plane.jobs.show(job.id)).state).toBe('completed');
  return { root, plane, disk, content };
}

describe('file-level recovery from machine points', () => {
  it('browses disks, partitions and the ext4 inside, and extracts files as a job', async () => {
    const { root, plane, content } = await setup();
    const disks = await plane.machines.browse('db01', 'latest', '');
    expect(disks.entries).toEqual([expect.objectContaining({ name: 'root', type: 'disk' })]);
    const partitions = await plane.machines.browse('db01', 'latest', 'root');
    expect(partitions.entries).toEqual([
      expect.objectContaining({ name: 'p1', type: 'partition', detail: 'linux, ext4 "dbroot"' }),
    ]);
    const etc = await plane.machines.browse('db01', 'latest', 'root/p1/etc');
    expect(etc.entries.map((e) => `${e.type} ${e.name}`).sort()).toEqual([
      'dir app',
      'file hostname',
    ]);
    await expect(plane.machines.browse('db01', 'latest', 'root/p2')).rejects.toThrow(
      /no partition 'p2'/,
    );
    await expect(plane.machines.browse('db01', 'latest', 'root/p1/../x')).rejects.toThrow(
      /'\.\.' is not allowed/,
    );

    const target = join(root, 'extracted');
    const job = await plane.items.restore('db01', {
      point: 'latest',
      target,
      as: 'files',
      paths: ['root/p1/etc', 'root/p1/data.bin'],
    });
    await plane.settle();
    const done = await plane.jobs.show(job.id);
    expect(done.state, JSON.stringify(done.attempts)).toBe('completed');
    expect(readFileSync(join(target, 'etc', 'app', 'settings.conf'), 'utf8')).toBe('port = 5432\n');
    expect(
      readFileSync(join(target, 'data.bin')).equals(readFileSync(join(content, 'data.bin'))),
    ).toBe(true);
  });

  it('exports the disks read-only over NBD on loopback until stopped', async () => {
    const { root, plane, disk } = await setup();
    const view = await plane.machines.startExport('db01', 'latest');
    expect(view.host).toBe('127.0.0.1');
    expect(plane.machines.listExports().map((e) => e.id)).toEqual([view.id]);
    const copy = join(root, 'via-nbd.raw');
    await run('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', view.urls['root']!, copy]);
    expect(readFileSync(copy).equals(readFileSync(disk))).toBe(true);
    await plane.machines.stopExport(view.id);
    expect(plane.machines.listExports()).toEqual([]);
    await expect(
      run('qemu-img', ['info', view.urls['root']!], { timeout: 20_000 }),
    ).rejects.toThrow();
  });
});

describe('disk images', () => {
  it('are made from a machine point and deployed as new machines, the base restored once', async () => {
    const { root, plane, disk } = await setup();
    const config = join(root, 'db01.xml');
    writeFileSync(
      config,
      `<domain><name>db01</name><uuid>11111111-2222-4333-8444-555555555555</uuid><disk><source file='${disk}'/></disk></domain>\n`,
    );
    await plane.items.protect({
      name: 'db02',
      workload: 'machine',
      machine: { disks: [`root=${disk}`], configs: [config] },
      vault: 'main',
      policy: 'nightly',
    });
    const backup = await plane.items.backupNow('db02');
    await plane.settle();
    expect((await plane.jobs.show(backup.id)).state).toBe('completed');

    const image = await plane.machines.createImage('db02', 'latest', 'db-template');
    expect(image).toMatchObject({ name: 'db-template', vault: 'main', item: 'db02' });
    expect(image.disks).toEqual([{ name: 'root', size: readFileSync(disk).length }]);
    expect((await plane.machines.listImages()).map((i) => i.name)).toEqual(['db-template']);
    await expect(plane.machines.createImage('db02', 'latest', 'db-template')).rejects.toThrow(
      /already exists/,
    );

    for (const name of ['db-a', 'db-b']) {
      const target = join(root, name);
      const job = await plane.machines.deployImage('db-template', target, name);
      await plane.settle();
      const done = await plane.jobs.show(job.id);
      expect(done.state, JSON.stringify(done.attempts)).toBe('completed');
      expect(readFileSync(join(target, 'disks', 'root')).equals(readFileSync(disk))).toBe(true);
      const xml = readFileSync(join(target, 'config', 'db01.xml'), 'utf8');
      expect(xml).toContain(`<name>${name}</name>`);
      expect(xml).toContain(`<source file='${join(target, 'disks', 'root')}'/>`);
      const how = (done.result?.['disks'] as Array<{ how: string }>)[0]?.how;
      expect(['cloned', 'copied']).toContain(how);
    }
    // One base copy served both deployments.
    const images = join(root, 'data', 'images');
    const vaults = readdirSync(images);
    expect(vaults).toHaveLength(1);
    expect(readdirSync(join(images, vaults[0]!))).toHaveLength(1);

    await plane.machines.deleteImage('db-template');
    expect(await plane.machines.listImages()).toEqual([]);
    expect(readdirSync(join(images, vaults[0]!))).toHaveLength(0);
  });
});
