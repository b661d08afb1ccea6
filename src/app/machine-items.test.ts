import { execFileSync } from 'node:child_process';
import {
  closeSync,
  copyFileSync,
  existsSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../core/index.js';
import { ensureCommand } from '../core/os-tools.testkit.js';
import { randomBytesSeeded } from '../engine/engine.testkit.js';
import { ControlPlane } from './control-plane.js';
import {
  cleanUpPlanes,
  counterWriter,
  domainXml,
  ext4Image,
  hookScript,
  machinePlane,
  writeIntoImage,
} from './machine-items.testkit.js';

const clockOf = new WeakMap<ControlPlane, ManualClock>();
beforeAll(async () => {
  await ensureCommand('mke2fs', 'e2fsprogs');
  await ensureCommand('qemu-img', 'qemu-utils');
  await ensureCommand('qemu-io', 'qemu-utils');
  await ensureCommand('losetup', 'mount');
}, 600_000);
afterEach(cleanUpPlanes);

async function setup() {
  const made = await machinePlane();
  clockOf.set(made.plane, made.clock);
  return made;
}

/** Backs the item up now (a minute after whatever ran before) and returns the finished job. */
async function backUp(plane: ControlPlane, name: string) {
  clockOf.get(plane)?.advance(60_000);
  const job = await plane.items.backupNow(name);
  await plane.settle();
  return plane.jobs.show(job.id);
}

async function restore(
  plane: ControlPlane,
  name: string,
  input: Parameters<ControlPlane['items']['restore']>[1],
) {
  const job = await plane.items.restore(name, input);
  await plane.settle();
  return plane.jobs.show(job.id);
}

/** The job's state, with its errors and result in the message when it is not the expected one. */
function expectState(job: Awaited<ReturnType<typeof backUp>>, state: string): void {
  expect(
    job.state,
    JSON.stringify({ result: job.result, errors: job.errors, attempts: job.attempts }),
  ).toBe(state);
}

/** A loop device over `file` (as root); a clear failure when the machine cannot make one. */
function attachLoop(file: string): string {
  try {
    return execFileSync('losetup', ['--find', '--show', file], { stdio: 'pipe' }).toString().trim();
  } catch (error) {
    throw new Error(
      `This test needs a loop device to stand in for a block device (losetup --find --show, as root, with /dev/loop-control): ${String(error)}`,
    );
  }
}

function detachLoop(device: string): void {
  execFileSync('losetup', ['--detach', device], { stdio: 'pipe' });
}

function same(a: string, b: string): boolean {
  return readFileSync(a).equals(readFileSync(b));
}

describe('machine items', () => {
  it('back up two disks, only changed blocks the second time, and restore as disks, qcow2, a new machine and in place', async () => {
    const { root, plane } = await setup();
    const rootDisk = join(root, 'web01-root.img');
    const dataDisk = join(root, 'web01-data.img');
    ext4Image(root, rootDisk, 48, 1);
    ext4Image(root, dataDisk, 32, 2);
    const config = join(root, 'web01.xml');
    writeFileSync(config, domainXml('web01', [rootDisk, dataDisk]));
    const item = await plane.items.protect({
      name: 'web01',
      workload: 'machine',
      machine: { disks: [`root=${rootDisk}`, `data=${dataDisk}`], configs: [config] },
      vault: 'main',
      policy: 'nightly',
    });
    expect(item.machine?.disks.map((d) => d.name)).toEqual(['root', 'data']);

    const first = await backUp(plane, 'web01');
    expectState(first, 'completed');
    expect(first.result?.['consistency']).toBe('crash');
    const firstState = join(root, 'root-first.img');
    copyFileSync(rootDisk, firstState);

    const changed = join(root, 'changed.bin');
    writeFileSync(changed, randomBytesSeeded(300_000, 5));
    writeIntoImage(rootDisk, changed, 'new.bin');
    const second = await backUp(plane, 'web01');
    expectState(second, 'completed');
    const capture = second.result?.['capture'] as {
      disks: Array<{ name: string; changedBytes: number | null }>;
    };
    const changedBytes = Object.fromEntries(capture.disks.map((d) => [d.name, d.changedBytes]));
    expect(changedBytes['data']).toBe(0);
    expect(changedBytes['root']).toBeGreaterThan(0);
    expect(changedBytes['root']).toBeLessThan(4 * 1024 * 1024);
    const points = await plane.items.points('web01');
    expect(points).toHaveLength(2);

    // As disks (raw): byte for byte, sparse, configuration beside them.
    const asDisks = join(root, 'as-disks');
    const disksJob = await restore(plane, 'web01', {
      point: 'latest',
      target: asDisks,
      verify: true,
    });
    expectState(disksJob, 'completed');
    expect(same(join(asDisks, 'disks', 'root'), rootDisk)).toBe(true);
    expect(same(join(asDisks, 'disks', 'data'), dataDisk)).toBe(true);
    const s = statSync(join(asDisks, 'disks', 'root'));
    expect(s.blocks * 512).toBeLessThan(s.size / 2);
    expect(readFileSync(join(asDisks, 'config', 'web01.xml'), 'utf8')).toBe(
      readFileSync(config, 'utf8'),
    );

    // As qcow2: qemu-img reads the same bytes and finds the image clean.
    const asQcow2 = join(root, 'as-qcow2');
    const qcowJob = await restore(plane, 'web01', {
      point: points[0]!.id,
      target: asQcow2,
      format: 'qcow2',
    });
    expectState(qcowJob, 'completed');
    const image = join(asQcow2, 'disks', 'root.qcow2');
    execFileSync('qemu-img', ['check', image], { stdio: 'pipe' });
    const raw = join(root, 'from-qcow2.raw');
    execFileSync('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', image, raw]);
    expect(same(raw, firstState)).toBe(true);

    // As a new machine: new name, UUID and MAC; disk sources point at the restored disks.
    const asNew = join(root, 'web01-test');
    const newJob = await restore(plane, 'web01', {
      point: 'latest',
      target: asNew,
      as: 'new-machine',
      newName: 'web01-test',
    });
    expectState(newJob, 'completed');
    const xml = readFileSync(join(asNew, 'config', 'web01.xml'), 'utf8');
    expect(xml).toContain('<name>web01-test</name>');
    expect(xml).not.toContain('6f1e1c2a-0000-4000-8000-00000000beef');
    expect(xml).not.toContain('52:54:00:aa:bb:cc');
    expect(xml).toContain(`<source file='${join(asNew, 'disks', 'root')}'/>`);
    expect(same(join(asNew, 'disks', 'data'), dataDisk)).toBe(true);

    // In place: a safety snapshot of the current disks first, then the first point's disks.
    const replaced = await restore(plane, 'web01', {
      point: points[0]!.id,
      as: 'replace',
      verify: true,
    });
    expectState(replaced, 'completed');
    expect(same(rootDisk, firstState)).toBe(true);
    const safetyPoint = replaced.result?.['safetyPoint'];
    const after = await plane.items.points('web01');
    expect(after.map((p) => p.id)).toContain(safetyPoint);
    // The safety point holds the disks as they were just before.
    const fromSafety = join(root, 'from-safety');
    expectState(
      await restore(plane, 'web01', { point: String(safetyPoint), target: fromSafety }),
      'completed',
    );
    expect(
      readFileSync(join(fromSafety, 'disks', 'root')).equals(
        readFileSync(join(asDisks, 'disks', 'root')),
      ),
    ).toBe(true);
  });

  it('leaves excluded disks out, and restores such a point only as disks', async () => {
    const { root, plane } = await setup();
    const os = join(root, 'os.img');
    const scratch = join(root, 'scratch.img');
    writeFileSync(os, randomBytesSeeded(1024 * 1024, 3));
    writeFileSync(scratch, randomBytesSeeded(1024 * 1024, 4));
    await plane.items.protect({
      name: 'app',
      workload: 'machine',
      machine: { disks: [os, scratch], excludeDisks: ['scratch.img'] },
      vault: 'main',
      policy: 'nightly',
    });
    const job = await backUp(plane, 'app');
    expectState(job, 'completed');
    expect((job.result?.['capture'] as { excludedDisks: string[] }).excludedDisks).toEqual([
      'scratch.img',
    ]);
    const target = join(root, 'app-disks');
    expectState(await restore(plane, 'app', { point: 'latest', target }), 'completed');
    expect(same(join(target, 'disks', 'os.img'), os)).toBe(true);
    expect(existsSync(join(target, 'disks', 'scratch.img'))).toBe(false);
    for (const input of [
      { point: 'latest', as: 'replace' as const },
      { point: 'latest', as: 'new-machine' as const, newName: 'app2', target: join(root, 'app2') },
    ]) {
      const refused = await restore(plane, 'app', input);
      expectState(refused, 'failed');
      expect(JSON.stringify(refused.result)).toMatch(
        /left out disk\(s\) scratch.img: it can only be restored --as disks/,
      );
    }
    await expect(plane.machines.createImage('app', 'latest', 'app-template')).rejects.toThrow(
      /left out disk\(s\) scratch.img/,
    );
  });

  it('replaces a block device in place (only the blocks that differ) and a qcow2 disk as qcow2', async () => {
    const { root, plane } = await setup();
    const backing = join(root, 'lv.raw');
    ext4Image(root, backing, 16, 5);
    const original = readFileSync(backing);
    const raw = join(root, 'sys.raw');
    ext4Image(root, raw, 16, 6);
    const image = join(root, 'sys.qcow2');
    execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, image]);
    const device = attachLoop(backing);
    try {
      await plane.items.protect({
        name: 'db',
        workload: 'machine',
        machine: { disks: [`data=${device}`, image] },
        vault: 'main',
        policy: 'nightly',
      });
      expectState(await backUp(plane, 'db'), 'completed');
      // The machine changes after the point: one block of the device, a write inside the qcow2.
      const fd = openSync(device, 'r+');
      writeSync(fd, Buffer.alloc(4096, 0xee), 0, 4096, 3 * 1024 * 1024);
      fsyncSync(fd);
      closeSync(fd);
      execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0xab 2M 64k', image], {
        stdio: 'pipe',
      });
      const replaced = await restore(plane, 'db', { point: 'latest', as: 'replace', verify: true });
      expectState(replaced, 'completed');
      expect(replaced.result?.['devices']).toEqual([{ device, bytesWritten: 512 * 1024 }]);
      expect(readFileSync(device).equals(original)).toBe(true);
      // Still a qcow2 image, holding the guest bytes of the point.
      expect(readFileSync(image).subarray(0, 4).toString('latin1')).toBe('QFI\xfb');
      const back = join(root, 'back.raw');
      execFileSync('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', image, back]);
      expect(same(back, raw)).toBe(true);
    } finally {
      detachLoop(device);
    }
  });

  it('refuses to replace the disks of a machine that looks running, unless forced', async () => {
    const { root, plane } = await setup();
    const real = join(root, 'vm.img');
    ext4Image(root, real, 16, 3);
    // The machine names its disk through a symbolic link, as LVM names volumes (/dev/vg/lv):
    // the process holding the real file must still be seen, and the real file replaced.
    mkdirSync(join(root, 'by-name'));
    const disk = join(root, 'by-name', 'vm.img');
    symlinkSync(real, disk);
    await plane.items.protect({
      name: 'vm',
      workload: 'machine',
      machine: { disks: [disk] },
      vault: 'main',
      policy: 'nightly',
    });
    expectState(await backUp(plane, 'vm'), 'completed');
    const backedUp = readFileSync(real);
    const holder = counterWriter(real, join(root, 'other.img'), join(root, 'ack'));
    writeFileSync(join(root, 'other.img'), Buffer.alloc(4096));
    try {
      await waitFor(() => readFileSync(disk).readBigUInt64LE(0) > 0n);
      const refused = await restore(plane, 'vm', { point: 'latest', as: 'replace' });
      expectState(refused, 'failed');
      expect(String(refused.result?.['error'] && JSON.stringify(refused.result['error']))).toMatch(
        /looks running: process \d+ has .*vm\.img open/,
      );
      const forced = await restore(plane, 'vm', { point: 'latest', as: 'replace', force: true });
      expectState(forced, 'completed');
      expect(forced.result?.['forcedWhileOpen']).toEqual([{ pid: holder.pid, path: disk }]);
      expect(lstatSync(disk).isSymbolicLink()).toBe(true);
      // The real file now holds the point (the writer still writes to the old, unlinked file).
      expect(readFileSync(real).equals(backedUp)).toBe(true);
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it('captures two disks written continuously at one instant when a freeze hook holds the writer', async () => {
    const { root, plane } = await setup();
    const a = join(root, 'a.img');
    const b = join(root, 'b.img');
    writeFileSync(a, Buffer.alloc(8 * 1024 * 1024));
    writeFileSync(b, Buffer.alloc(8 * 1024 * 1024));
    const ack = join(root, 'frozen');
    const writer = counterWriter(a, b, ack);
    const pidFile = join(root, 'writer.pid');
    writeFileSync(pidFile, String(writer.pid));
    const freeze = hookScript(
      root,
      'freeze',
      `case "$1" in
  freeze) kill -USR2 "$(cat ${pidFile})"; i=0; while [ ! -f ${ack} ]; do sleep 0.02; i=$((i+1)); if [ $i -gt 500 ]; then exit 1; fi; done ;;
  thaw) kill -HUP "$(cat ${pidFile})" ;;
esac`,
    );
    try {
      await waitFor(() => readFileSync(b).readBigUInt64LE(0) > 1000n);
      await plane.items.protect({
        name: 'pair',
        workload: 'machine',
        machine: { disks: [a, b], freezeCommand: freeze },
        vault: 'main',
        policy: 'nightly',
      });
      for (let round = 0; round < 2; round++) {
        const job = await backUp(plane, 'pair');
        expectState(job, 'completed');
        expect(job.result?.['consistency']).toBe('file-system');
        const capture = job.result?.['capture'] as { frozenMs: number };
        expect(capture.frozenMs).toBeGreaterThan(0);
        const target = join(root, `restored-${round}`);
        expectState(await restore(plane, 'pair', { point: 'latest', target }), 'completed');
        const counterA = readFileSync(join(target, 'disks', 'a.img')).readBigUInt64LE(0);
        const counterB = readFileSync(join(target, 'disks', 'b.img')).readBigUInt64LE(0);
        expect(counterA).toBeGreaterThan(0n);
        expect(counterB).toBe(counterA);
      }
    } finally {
      writer.kill('SIGKILL');
    }
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}
