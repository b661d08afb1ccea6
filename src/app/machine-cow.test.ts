import {
  mkdtempSync,
  openSync,
  closeSync,
  fsyncSync,
  readFileSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureCommand, mountXfs } from '../core/os-tools.testkit.js';
import { fileExtents } from '../engine/index.js';
import type { MachineDescription } from './machine-backup.js';
import { cleanUpPlanes, ext4Image, machinePlane } from './machine-items.testkit.js';

let dir: string;
let xfs: { path: string; unmount: () => void } | undefined;
beforeAll(() => {
  ensureCommand('mke2fs', 'e2fsprogs');
  ensureCommand('losetup', 'mount');
  dir = mkdtempSync(join(tmpdir(), 'holdfast-cow-'));
  xfs = mountXfs(dir);
}, 600_000);
afterAll(async () => {
  await cleanUpPlanes();
  xfs?.unmount();
  rmSync(dir, { recursive: true, force: true });
});

describe('a machine on a copy-on-write file system (XFS with reflink)', () => {
  it('is captured by clones that read only what changed, and deploys images as clones sharing blocks', async () => {
    const root = join(xfs!.path, 'plane');
    const { plane, clock } = await machinePlane({ root });
    const disk = join(xfs!.path, 'vm.img');
    ext4Image(xfs!.path, disk, 32, 4);
    await plane.items.protect({
      name: 'vm',
      workload: 'machine',
      machine: { disks: [`root=${disk}`] },
      vault: 'main',
      policy: 'nightly',
    });
    const backUp = async () => {
      clock.advance(60_000);
      const job = await plane.items.backupNow('vm');
      await plane.settle();
      const done = await plane.jobs.show(job.id);
      expect(done.state, JSON.stringify(done.errors)).toBe('completed');
    };
    const described = async (): Promise<MachineDescription> => {
      const target = join(dir, `described-${Date.now()}`);
      const job = await plane.items.restore('vm', { point: 'latest', target });
      await plane.settle();
      expect((await plane.jobs.show(job.id)).state).toBe('completed');
      return JSON.parse(readFileSync(join(target, 'machine.json'), 'utf8')) as MachineDescription;
    };
    await backUp();
    const first = (await described()).disks[0]!;
    expect(first.changedBytes).toBe(null);

    // One 4 KiB write inside the disk: its clone shares every other block with the last one.
    const fd = openSync(disk, 'r+');
    writeSync(fd, Buffer.alloc(4096, 0xab), 0, 4096, 20 * 1024 * 1024);
    fsyncSync(fd);
    closeSync(fd);
    await backUp();
    const second = (await described()).disks[0]!;
    expect(second.changedBytes).toBe(512 * 1024);
    expect(second.bytesRead).toBe(512 * 1024);

    await plane.machines.createImage('vm', 'latest', 'vm-template');
    const target = join(xfs!.path, 'vm2');
    const job = await plane.machines.deployImage('vm-template', target, 'vm2');
    await plane.settle();
    const deployed = await plane.jobs.show(job.id);
    expect(deployed.state).toBe('completed');
    expect((deployed.result?.['disks'] as Array<{ how: string }>)[0]?.how).toBe('cloned');
    const copy = join(target, 'disks', 'root');
    expect(readFileSync(copy).equals(readFileSync(disk))).toBe(true);
    // Every extent of the new machine's disk is shared with the image's base copy.
    const extents = await fileExtents(copy);
    expect(extents?.length).toBeGreaterThan(0);
    expect(extents!.every((e) => e.flags.includes('shared'))).toBe(true);
  });
});
