import { mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MemoryBackend } from '../backends/index.js';
import { makeTestVault, randomBytesSeeded, reopenTestVault } from '../engine/engine.testkit.js';
import { IMAGE_BLOCK, Restorer, type Point, type Vault } from '../engine/index.js';
import {
  ensureStorageDaemon,
  startStorageDaemon,
  type StorageDaemon,
} from '../workloads/qemu/storage-daemon.testkit.js';
import {
  forgetQemuTracking,
  machineDisks,
  mirrorPath,
  type MachineSource,
} from '../workloads/index.js';
import { qemu as qemuTool, qemuRaw, qemuWrite } from '../workloads/qcow2/qemu.testkit.js';
import { backupMachine } from './machine-backup.js';
import { cleanUpPlanes, machinePlane } from './machine-items.testkit.js';

const MiB = 1024 * 1024;

// UNIX socket paths are short: the test directory is directly under /tmp.
let dir: string;
let daemon: StorageDaemon | undefined;
beforeAll(() => ensureStorageDaemon(), 600_000);
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hf-qemu-'));
});
afterEach(async () => {
  await daemon?.stop();
  daemon = undefined;
  await cleanUpPlanes();
  await rm(dir, { recursive: true, force: true });
});

/** A sparse 64 MiB raw disk with 4 MiB of data at 8 MiB and 2 MiB at 48 MiB. */
async function rawDisk(path: string): Promise<void> {
  const handle = await open(path, 'w');
  try {
    await handle.truncate(64 * MiB);
    await handle.write(randomBytesSeeded(4 * MiB, 1), 0, 4 * MiB, 8 * MiB);
    await handle.write(randomBytesSeeded(2 * MiB, 2), 0, 2 * MiB, 48 * MiB);
  } finally {
    await handle.close();
  }
}

/** The disk of {@link rawDisk}, served by a QEMU (storage daemon), as a machine item's source. */
async function runningMachine(): Promise<{
  image: string;
  source: MachineSource;
  qemu: StorageDaemon;
}> {
  const image = join(dir, 'vm1.raw');
  await rawDisk(image);
  return { image, ...(await serve(image, 'raw')) };
}

/** Serves `image` with a QEMU (storage daemon) and names it as a machine item's source. */
async function serve(
  image: string,
  format: 'raw' | 'qcow2',
): Promise<{ source: MachineSource; qemu: StorageDaemon }> {
  const qemu = await startStorageDaemon(image, format, dir);
  daemon = qemu;
  const source: MachineSource = {
    disks: machineDisks([image], []),
    excludeDisks: [],
    configs: [],
    qemuMonitor: qemu.qmpSocket,
  };
  return { source, qemu };
}

async function backup(vault: Vault, source: MachineSource, parent?: Point, notices: string[] = []) {
  const result = await backupMachine(vault, {
    name: 'vm1',
    source,
    mirrorDir: join(dir, 'mirrors'),
    tags: ['item:vm1'],
    runScript: () => Promise.reject(new Error('no scripts are configured')),
    now: () => Date.now(),
    notice: (m: string) => notices.push(m),
    ...(parent ? { findParent: () => Promise.resolve(parent) } : {}),
  });
  await result.captured.durable;
  return { ...result, disk: result.captured.disks[0]!, notices };
}

describe('changed blocks from a running QEMU (dirty bitmaps over QMP)', () => {
  it('reads only the blocks the guest wrote, and the points restore byte for byte', async () => {
    const { image, source, qemu } = await runningMachine();
    const backend = new MemoryBackend();
    const vault = await makeTestVault(backend);

    // First capture: no bitmap yet, so the data is read and hashed whole (holes skipped).
    const first = await backup(vault, source);
    expect(first.disk.changed).toBeUndefined();
    expect(first.disk.bytesRead).toBe(6 * MiB);
    expect(first.notices).toEqual([]);

    // The guest writes 64 KiB across a block boundary and 4 KiB into a hole.
    await qemu.write(8 * MiB + IMAGE_BLOCK - 4096, 64 * 1024, 0xab);
    await qemu.write(40 * MiB, 4096, 0xcd);
    const second = await backup(vault, source, first.point);
    expect(second.notices).toEqual([]);
    const touched = [
      { offset: 8 * MiB, length: 2 * IMAGE_BLOCK },
      { offset: 40 * MiB, length: IMAGE_BLOCK },
    ];
    expect(second.disk.changed).toEqual(touched);
    // Only those three blocks were read: QEMU said which.
    expect(second.disk.bytesRead).toBe(3 * IMAGE_BLOCK);
    expect(
      (await readFile(mirrorPath(join(dir, 'mirrors'), source.disks[0]!))).equals(
        await readFile(image),
      ),
    ).toBe(true);

    // Nothing written: nothing read.
    const third = await backup(vault, source, second.point);
    expect(third.disk.changed).toEqual([]);
    expect(third.disk.bytesRead).toBe(0);

    const target = join(dir, 'restored');
    await new Restorer(await reopenTestVault(backend), third.point, { target }).run();
    expect((await readFile(join(target, 'disks', 'vm1.raw'))).equals(await readFile(image))).toBe(
      true,
    );
    const restored = await stat(join(target, 'disks', 'vm1.raw'));
    expect(restored.blocks * 512).toBeLessThan(16 * MiB);
  }, 120_000);

  it('reads the disk whole when QEMU lost the bitmap, cannot be reached, or was bypassed', async () => {
    const { image, source, qemu } = await runningMachine();
    const vault = await makeTestVault();
    const first = await backup(vault, source);

    // QEMU restarted: its bitmaps are gone. The capture says so and hashes everything.
    await qemu.stop();
    const restarted = await startStorageDaemon(image, 'raw', dir);
    daemon = restarted;
    await restarted.write(20 * MiB, 4096, 0x11);
    const second = await backup(vault, source, first.point);
    expect(second.notices.join('\n')).toMatch(/no longer has the bitmap/);
    expect(second.disk.bytesRead).toBe(6 * MiB + IMAGE_BLOCK);
    expect(second.disk.changed).toEqual([{ offset: 20 * MiB, length: IMAGE_BLOCK }]);

    // A write beside QEMU (as a replace makes) after forgetting the bitmap is found by hashing.
    const mirror = mirrorPath(join(dir, 'mirrors'), source.disks[0]!);
    await forgetQemuTracking(mirror);
    const handle = await open(image, 'r+');
    await handle.write(Buffer.alloc(4096, 0x22), 0, 4096, 30 * MiB);
    await handle.close();
    const third = await backup(vault, source, second.point);
    expect(third.disk.changed).toEqual([{ offset: 30 * MiB, length: IMAGE_BLOCK }]);

    // No monitor at the socket: a notice, and the capture is still right.
    await daemon.stop();
    daemon = undefined;
    await writeFile(join(dir, 'note'), 'x');
    const fourth = await backup(vault, source, third.point);
    expect(fourth.notices.join('\n')).toMatch(/did not answer/);
    expect(fourth.disk.changed).toEqual([]);
    expect((await readFile(mirror)).equals(await readFile(image))).toBe(true);
  }, 120_000);

  it('is configured on a machine item and used by its scheduled backups', async () => {
    const image = join(dir, 'vm1.raw');
    await rawDisk(image);
    daemon = await startStorageDaemon(image, 'raw', dir);
    const { plane, clock } = await machinePlane({ root: join(dir, 'plane') });
    const item = await plane.items.protect({
      name: 'vm1',
      workload: 'machine',
      machine: { disks: [image], qemuMonitor: daemon.qmpSocket },
      vault: 'main',
      policy: 'nightly',
    });
    expect(item.machine?.qemuMonitor).toBe(daemon.qmpSocket);
    const backUp = async () => {
      clock.advance(60_000);
      const job = await plane.items.backupNow('vm1');
      await plane.settle();
      const done = await plane.jobs.show(job.id);
      expect(done.state).toBe('completed');
      return done.result?.['capture'] as {
        disks: Array<{ bytesRead: number; changedBytes: number }>;
      };
    };
    expect((await backUp()).disks[0]!.bytesRead).toBe(6 * MiB);
    await daemon.write(50 * MiB, 8192, 0x5a);
    const second = (await backUp()).disks[0]!;
    expect(second).toMatchObject({ bytesRead: IMAGE_BLOCK, changedBytes: IMAGE_BLOCK });
  }, 120_000);

  it('reads a qcow2 disk through QEMU, whose memory may hold its metadata, and only what changed', async () => {
    const image = join(dir, 'vm1.qcow2');
    qemuTool('qemu-img', ['create', '-q', '-f', 'qcow2', image, '32M']);
    qemuWrite(image, [
      { offset: 2 * MiB, length: 1 * MiB, pattern: 0x31 },
      { offset: 20 * MiB, length: 64 * 1024, pattern: 0x32 },
    ]);
    const { source, qemu } = await serve(image, 'qcow2');
    const backend = new MemoryBackend();
    const vault = await makeTestVault(backend);
    const first = await backup(vault, source);
    expect(first.notices).toEqual([]);
    // Through QEMU, which says what reads as zeros: only the blocks holding the two writes.
    expect(first.disk.bytesRead).toBe(3 * IMAGE_BLOCK);
    expect(first.disk.format).toBe('qcow2');

    // A write into unallocated space: QEMU allocates a cluster and may keep the new mapping
    // in memory; the capture reads the block through QEMU and nothing else.
    await qemu.write(12 * MiB, 4096, 0x77);
    const second = await backup(vault, source, first.point);
    expect(second.notices).toEqual([]);
    expect(second.disk.changed).toEqual([{ offset: 12 * MiB, length: IMAGE_BLOCK }]);
    expect(second.disk.bytesRead).toBe(IMAGE_BLOCK);

    await qemu.stop();
    daemon = undefined;
    const guest = qemuRaw(image);
    const mirror = mirrorPath(join(dir, 'mirrors'), source.disks[0]!);
    expect((await readFile(mirror)).equals(guest)).toBe(true);
    const target = join(dir, 'restored');
    await new Restorer(await reopenTestVault(backend), second.point, { target }).run();
    expect((await readFile(join(target, 'disks', 'vm1.qcow2'))).equals(guest)).toBe(true);
  }, 120_000);
});
