import { execFileSync } from 'node:child_process';
import { mkdir, open, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MemoryBackend } from '../backends/index.js';
import { ensureCommand } from '../core/os-tools.testkit.js';
import {
  BlobReader,
  fileDataExtents,
  IMAGE_BLOCK,
  loadTree,
  Restorer,
  type Point,
} from '../engine/index.js';
import {
  makeTestVault,
  randomBytesSeeded,
  reopenTestVault,
  tempDir,
} from '../engine/engine.testkit.js';
import { blockRanges, machineDisks, type MachineSource } from '../workloads/index.js';
import { backupMachine, type MachineDescription } from './machine-backup.js';

let dir: { path: string; cleanup(): Promise<void> };
beforeAll(async () => {
  await ensureCommand('mke2fs', 'e2fsprogs');
  await ensureCommand('qemu-img', 'qemu-utils');
  await ensureCommand('qemu-io', 'qemu-utils');
}, 600_000);
beforeEach(async () => {
  dir = await tempDir();
});
afterEach(async () => {
  await dir.cleanup();
});

/** A real ext4 image of `mib` MiB populated from a directory of seeded random files. */
async function ext4Image(path: string, mib: number, seed: number): Promise<void> {
  const content = join(dir.path, `content-${seed}`);
  await mkdir(join(content, 'etc'), { recursive: true });
  await writeFile(join(content, 'etc', 'hostname'), `machine-${seed}\n`);
  await writeFile(join(content, 'data.bin'), randomBytesSeeded(3 * 1024 * 1024, seed));
  execFileSync('mke2fs', [
    '-q',
    '-t',
    'ext4',
    '-F',
    '-d',
    content,
    '-E',
    'root_owner=0:0',
    path,
    `${mib}M`,
  ]);
}

const noScripts = () => Promise.reject(new Error('no scripts are configured'));

function request(source: MachineSource, notices: string[] = []) {
  return {
    name: 'web01',
    source,
    mirrorDir: join(dir.path, 'mirrors'),
    tags: ['item:web01'],
    runScript: noScripts,
    now: () => Date.now(),
    notice: (m: string) => notices.push(m),
  };
}

describe('backupMachine', () => {
  it('backs two ext4 disks up, then only their changed blocks, and restores them byte for byte and sparse', async () => {
    const a = join(dir.path, 'root.img');
    const b = join(dir.path, 'data.img');
    await ext4Image(a, 64, 1);
    await ext4Image(b, 32, 2);
    const config = join(dir.path, 'web01.xml');
    await writeFile(config, '<domain><name>web01</name></domain>\n');
    const source: MachineSource = {
      disks: machineDisks([a, b], []),
      excludeDisks: [],
      configs: [config],
    };
    const backend = new MemoryBackend();
    const vault = await makeTestVault(backend);
    const first = await backupMachine(vault, request(source));
    expect(first.captured.consistency).toBe('crash');
    expect(first.point.consistency).toBe('crash');
    // Empty space of the file systems is neither read into chunks nor stored.
    expect(first.point.stats.newBytes).toBeLessThan(16 * 1024 * 1024);

    // Change one file inside the first disk's file system.
    const changed = join(dir.path, 'changed.bin');
    await writeFile(changed, randomBytesSeeded(200_000, 9));
    execFileSync('debugfs', ['-w', '-R', `write ${changed} new.bin`, a], { stdio: 'pipe' });
    const second = await backupMachine(vault, {
      ...request(source),
      findParent: () => Promise.resolve(first.point),
    });
    const disks = second.captured.disks;
    expect(disks.find((d) => d.name === 'data.img')!.changed).toEqual([]);
    const changedBytes = disks
      .find((d) => d.name === 'root.img')!
      .changed!.reduce((n, r) => n + r.length, 0);
    expect(changedBytes).toBeGreaterThan(0);
    expect(changedBytes).toBeLessThanOrEqual(8 * IMAGE_BLOCK);
    expect(second.point.stats.newBytes).toBeLessThanOrEqual(changedBytes + 64 * 1024);
    // Only the changed blocks were read from the mirrors: the unchanged disk not at all.
    expect(second.bytesRead).toBe(changedBytes);

    const target = join(dir.path, 'restored');
    const errors: unknown[] = [];
    await new Restorer(await reopenTestVault(backend), second.point, {
      target,
      onError: (_p, e) => errors.push(e),
    }).run();
    expect(errors).toEqual([]);
    for (const [name, original] of [
      ['root.img', a],
      ['data.img', b],
    ] as const) {
      const restored = join(target, 'disks', name);
      expect((await readFile(restored)).equals(await readFile(original))).toBe(true);
      const s = await stat(restored);
      expect(s.blocks * 512).toBeLessThan(s.size / 2);
    }
    expect(await readFile(join(target, 'config', 'web01.xml'), 'utf8')).toContain(
      '<name>web01</name>',
    );
    const description = JSON.parse(
      await readFile(join(target, 'machine.json'), 'utf8'),
    ) as MachineDescription;
    expect(description.disks.map((d) => d.name).sort()).toEqual(['data.img', 'root.img']);
    expect(description.consistency).toBe('crash');

    // Changed blocks are relative to the last point made from the mirror: handed an older
    // parent, the backup reads everything instead of taking stale blocks from it.
    const third = await backupMachine(vault, {
      ...request(source),
      findParent: () => Promise.resolve(first.point),
    });
    // Everything the mirrors hold, that is: their holes are known without reading them.
    let dataBytes = 0;
    for (const d of third.captured.disks) {
      const extents = await fileDataExtents(d.mirror);
      expect(extents).toBeDefined();
      for (const r of blockRanges(d.size, extents, IMAGE_BLOCK)) if (r.data) dataBytes += r.length;
    }
    expect(dataBytes).toBeGreaterThan(changedBytes);
    expect(dataBytes).toBeLessThan(((64 + 32) * 1024 * 1024) / 4);
    expect(third.bytesRead).toBe(dataBytes);
    const again = join(dir.path, 'again');
    await new Restorer(await reopenTestVault(backend), third.point, { target: again }).run();
    expect((await readFile(join(again, 'disks', 'root.img'))).equals(await readFile(a))).toBe(true);
  });

  it('backs a qcow2 disk up through its structure, then only the guest blocks a write changed', async () => {
    const raw = join(dir.path, 'vm.raw');
    await ext4Image(raw, 64, 3);
    const image = join(dir.path, 'vm.qcow2');
    execFileSync('qemu-img', ['convert', '-c', '-f', 'raw', '-O', 'qcow2', raw, image]);
    const source: MachineSource = {
      disks: machineDisks([image], []),
      excludeDisks: [],
      configs: [],
    };
    const backend = new MemoryBackend();
    const vault = await makeTestVault(backend);
    const first = await backupMachine(vault, request(source));
    expect(first.captured.disks[0]!.format).toBe('qcow2');
    // The guest's size, not the (compressed) file's.
    expect(first.captured.disks[0]!.size).toBe(64 * 1024 * 1024);

    // Two writes inside the guest, through qemu's own I/O: 64 KiB at 5 MiB, 1 byte at 40 MiB.
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0xab 5M 64k', image], {
      stdio: 'pipe',
    });
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0xcd 40M 1', image], { stdio: 'pipe' });
    const second = await backupMachine(vault, {
      ...request(source),
      findParent: () => Promise.resolve(first.point),
    });
    expect(second.captured.disks[0]!.changed).toEqual([
      { offset: 10 * IMAGE_BLOCK, length: IMAGE_BLOCK },
      { offset: 80 * IMAGE_BLOCK, length: IMAGE_BLOCK },
    ]);
    // Only those guest blocks were read from the mirror.
    expect(second.bytesRead).toBe(2 * IMAGE_BLOCK);

    const target = join(dir.path, 'restored');
    await new Restorer(await reopenTestVault(backend), second.point, { target }).run();
    const expected = join(dir.path, 'expected.raw');
    execFileSync('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', image, expected]);
    expect(
      (await readFile(join(target, 'disks', 'vm.qcow2'))).equals(await readFile(expected)),
    ).toBe(true);
    const description = JSON.parse(
      await readFile(join(target, 'machine.json'), 'utf8'),
    ) as MachineDescription;
    expect(description.disks[0]!.format).toBe('qcow2');
  });

  it('runs one capture at a time on a set of mirrors', async () => {
    const a = join(dir.path, 'a.img');
    await writeFile(a, randomBytesSeeded(2 * 1024 * 1024, 6));
    const events: string[] = [];
    const freezeHook = async (_path: string, args: string[]) => {
      events.push(args[0]!);
      await new Promise((resolve) => setTimeout(resolve, 50));
      return { ok: true, exitCode: 0, timedOut: false, attempts: 1, durationMs: 50, output: '' };
    };
    const source: MachineSource = {
      disks: machineDisks([a], []),
      excludeDisks: [],
      configs: [],
      freezeCommand: '/bin/true',
    };
    const backend = new MemoryBackend();
    const vault = await makeTestVault(backend);
    const both = await Promise.all(
      [1, 2].map(() => backupMachine(vault, { ...request(source), runScript: freezeHook })),
    );
    expect(events).toEqual(['freeze', 'thaw', 'freeze', 'thaw']);
    for (const { point } of both) {
      const target = join(dir.path, `r-${point.id.slice(0, 8)}`);
      await new Restorer(await reopenTestVault(backend), point, { target }).run();
      expect((await readFile(join(target, 'disks', 'a.img'))).equals(await readFile(a))).toBe(true);
    }
  });

  it('does not read an image file that is provably unchanged since the last capture', async () => {
    const a = join(dir.path, 'idle.img');
    await writeFile(a, randomBytesSeeded(3 * 1024 * 1024, 12));
    // A file changed less than two seconds before it is looked at is never trusted unread.
    await new Promise((resolve) => setTimeout(resolve, 2100));
    const source: MachineSource = { disks: machineDisks([a], []), excludeDisks: [], configs: [] };
    const backend = new MemoryBackend();
    const vault = await makeTestVault(backend);
    const first = await backupMachine(vault, request(source));
    expect(first.captured.disks[0]!.bytesRead).toBe(3 * 1024 * 1024);
    const idle = await backupMachine(vault, {
      ...request(source),
      findParent: () => Promise.resolve(first.point),
    });
    expect(idle.captured.disks[0]!.bytesRead).toBe(0);
    expect(idle.captured.disks[0]!.changed).toEqual([]);
    expect(idle.bytesRead).toBe(0);
    // The unchanged disk's node, and so the `disks` directory, are the parent's: stored once.
    const disksTree = async (point: Point) =>
      (await loadTree(new BlobReader(vault), point.tree)).find((n) => n.name.toString() === 'disks')
        ?.subtree;
    expect(await disksTree(idle.point)).toBe(await disksTree(first.point));

    // Written again (same size): read and compared again, and the change found.
    const handle = await open(a, 'r+');
    await handle.write(Buffer.from('changed'), 0, 7, 1024 * 1024 + 5);
    await handle.close();
    const after = await backupMachine(vault, {
      ...request(source),
      findParent: () => Promise.resolve(idle.point),
    });
    expect(after.captured.disks[0]!.bytesRead).toBe(3 * 1024 * 1024);
    expect(after.captured.disks[0]!.changed).toEqual([
      { offset: IMAGE_BLOCK * 2, length: IMAGE_BLOCK },
    ]);
    const target = join(dir.path, 'idle-restored');
    await new Restorer(await reopenTestVault(backend), after.point, { target }).run();
    expect((await readFile(join(target, 'disks', 'idle.img'))).equals(await readFile(a))).toBe(
      true,
    );
  });
});
