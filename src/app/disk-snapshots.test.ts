import { execFileSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ensureCommand } from '../core/os-tools.testkit.js';
import { randomBytesSeeded } from '../engine/engine.testkit.js';
import { cleanUpPlanes, ext4Image, machinePlane, writeIntoImage } from './machine-items.testkit.js';

const DAY = 86_400_000;
beforeAll(() => {
  ensureCommand('mke2fs', 'e2fsprogs');
  ensureCommand('qemu-img', 'qemu-utils');
}, 600_000);
afterEach(cleanUpPlanes);

describe('disk snapshots', () => {
  it('are incremental, listed and restored on their own, and leave at their own expiry', async () => {
    const { root, plane, clock } = await machinePlane({ jobRetries: 0 });
    const disk = join(root, 'data.img');
    ext4Image(root, disk, 32, 4);
    const settle = async (job: { id: string }) => {
      await plane.settle();
      const done = await plane.jobs.show(job.id);
      expect(done.state, JSON.stringify(done.attempts)).toBe('completed');
      return done;
    };
    const first = await settle(
      await plane.diskSnapshots.snapshot({
        name: 'before-upgrade',
        disk,
        vault: 'main',
        keepDays: 1,
      }),
    );
    const firstState = join(root, 'first.img');
    copyFileSync(disk, firstState);
    await expect(
      plane.diskSnapshots.snapshot({ name: 'before-upgrade', disk, vault: 'main' }),
    ).rejects.toThrow(/already exists/);

    const changed = join(root, 'changed.bin');
    writeFileSync(changed, randomBytesSeeded(100_000, 8));
    writeIntoImage(disk, changed, 'upgrade.log');
    clock.advance(60_000);
    const second = await settle(
      await plane.diskSnapshots.snapshot({
        name: 'after-upgrade',
        disk,
        vault: 'main',
        keepDays: 3,
      }),
    );
    // Incremental on the first: only the changed blocks are new.
    expect(Number(first.result?.['newBytes'])).toBeGreaterThan(2_000_000);
    expect(Number(second.result?.['newBytes'])).toBeLessThan(2 * 512 * 1024 + 100_000);

    const listed = await plane.diskSnapshots.list();
    expect(listed.map((s) => [s.name, s.disk, s.vault])).toEqual([
      ['before-upgrade', disk, 'main'],
      ['after-upgrade', disk, 'main'],
    ]);

    const raw = join(root, 'restored');
    await settle(await plane.diskSnapshots.restore('before-upgrade', { target: raw }));
    expect(readFileSync(join(raw, 'disks', 'data.img')).equals(readFileSync(firstState))).toBe(
      true,
    );
    const qcow = join(root, 'restored-qcow2');
    await settle(
      await plane.diskSnapshots.restore('after-upgrade', { target: qcow, format: 'qcow2' }),
    );
    const back = join(root, 'back.raw');
    execFileSync('qemu-img', [
      'convert',
      '-f',
      'qcow2',
      '-O',
      'raw',
      join(qcow, 'disks', 'data.img.qcow2'),
      back,
    ]);
    expect(readFileSync(back).equals(readFileSync(disk))).toBe(true);

    // Deleting by hand: refused while the vault is immutable, done once it is not.
    await settle(await plane.diskSnapshots.snapshot({ name: 'scratch', disk, vault: 'main' }));
    await plane.vaults.immutability('main', 'enabled');
    await expect(plane.diskSnapshots.delete('scratch')).rejects.toThrow(/immutable/);
    await plane.vaults.immutability('main', 'disabled');
    await plane.diskSnapshots.delete('scratch');
    await expect(plane.diskSnapshots.delete('scratch')).rejects.toThrow(/No disk snapshot named/);

    // Each leaves at its own expiry: a retention run after two days removes only the first.
    clock.advance(2 * DAY);
    await plane.settle();
    expect((await plane.diskSnapshots.list()).map((s) => s.name)).toEqual(['after-upgrade']);
    clock.advance(2 * DAY);
    await plane.settle();
    expect(await plane.diskSnapshots.list()).toEqual([]);
  });
});
