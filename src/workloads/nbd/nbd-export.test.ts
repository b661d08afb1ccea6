import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureCommand } from '../../core/os-tools.testkit.js';
import { randomBytesSeeded } from '../../engine/engine.testkit.js';
import { memoryDisk } from '../disk-images.testkit.js';
import { openDisk } from '../disk-reader.js';
import type { DiskReader } from '../partition-table.js';
import { startNbdExport, type NbdExport } from './nbd-export.js';

// Asynchronous on purpose: the server runs in this process, and a synchronous child would
// block the event loop it needs to answer.
const run = promisify(execFile);
const MiB = 1024 * 1024;
/** A whole number of sectors, as qemu reads it; nbdcopy gets the disk with an odd size. */
const aligned = randomBytesSeeded(8 * MiB, 1);
const odd = randomBytesSeeded(3 * MiB + 123, 2);
let dir: string;
let server: NbdExport;
const readErrors: unknown[] = [];

beforeAll(async () => {
  ensureCommand('nbdinfo', 'libnbd-bin');
  ensureCommand('nbdcopy', 'libnbd-bin');
  ensureCommand('qemu-img', 'qemu-utils');
  ensureCommand('mke2fs', 'e2fsprogs');
  ensureCommand('debugfs', 'e2fsprogs');
  dir = mkdtempSync(join(tmpdir(), 'holdfast-nbd-'));
  server = await startNbdExport({
    disks: new Map<string, DiskReader>([
      ['aligned', memoryDisk(aligned)],
      ['odd', memoryDisk(odd)],
    ]),
    onError: (error) => readErrors.push(error),
  });
}, 600_000);
afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function nbdinfoJson(args: string[]): Promise<{ exports: Array<Record<string, unknown>> }> {
  const { stdout } = await run('nbdinfo', ['--json', ...args]);
  return JSON.parse(stdout) as { exports: Array<Record<string, unknown>> };
}

describe('real NBD clients', () => {
  it('nbdinfo sees the size, read-only and multi-connection', async () => {
    const info = await nbdinfoJson([server.url('odd')]);
    expect(info.exports).toHaveLength(1);
    expect(info.exports[0]).toMatchObject({
      'export-name': 'odd',
      'export-size': odd.length,
      is_read_only: true,
      can_multi_conn: true,
      can_trim: false,
      can_zero: false,
      block_size_maximum: 32 * MiB,
    });
  });

  it('nbdinfo --list lists every export', async () => {
    const info = await nbdinfoJson(['--list', `nbd://127.0.0.1:${server.port}`]);
    expect(info.exports.map((e) => [e['export-name'], e['export-size']])).toEqual([
      ['aligned', aligned.length],
      ['odd', odd.length],
    ]);
  });

  it('qemu-img convert copies a disk byte for byte', async () => {
    const out = join(dir, 'qemu.raw');
    await run('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', server.url('aligned'), out]);
    expect(readFileSync(out).equals(aligned)).toBe(true);
  });

  it('nbdcopy copies a disk of an odd size byte for byte, over several connections', async () => {
    const out = join(dir, 'nbdcopy.raw');
    await run('nbdcopy', ['--connections=4', '--requests=16', server.url('odd'), out]);
    expect(readFileSync(out).equals(odd)).toBe(true);
    expect(readErrors).toEqual([]);
  });
});

describe('file-level recovery from a real ext4 image', () => {
  it('serves an image file whose files debugfs reads from the copy', async () => {
    const content = join(dir, 'content');
    mkdirSync(join(content, 'etc'), { recursive: true });
    writeFileSync(join(content, 'etc', 'hostname'), 'web02\n');
    const image = join(dir, 'ext4.img');
    // -d fills the new file system from a directory; no mount, no root privileges needed.
    await run('mke2fs', ['-q', '-t', 'ext4', '-F', '-d', content, image, '16M']);
    const disk = await openDisk(image);
    const ext4 = await startNbdExport({ disks: { name: 'root', disk } });
    try {
      const out = join(dir, 'ext4-copy.img');
      await run('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', ext4.url('root'), out]);
      expect(readFileSync(out).equals(readFileSync(image))).toBe(true);
      const { stdout } = await run('debugfs', ['-R', 'cat /etc/hostname', out]);
      expect(stdout).toBe('web02\n');
    } finally {
      await ext4.close();
      await disk.close();
    }
  });
});

describe('a damaged backup', () => {
  it('fails the copy with an I/O error, reports the read, and serves the next client', async () => {
    const inner = memoryDisk(aligned);
    const damaged: DiskReader = {
      size: inner.size,
      read: async (offset, length) => {
        if (offset + length > 5 * MiB && offset < 5 * MiB + 1) throw new Error('pack damaged');
        return inner.read(offset, length);
      },
    };
    const reported: Array<{ offset: number; length: number } | undefined> = [];
    const broken = await startNbdExport({
      disks: { name: 'broken', disk: damaged },
      onError: (_error, read) => reported.push(read),
    });
    try {
      const out = join(dir, 'broken.raw');
      const copy = run('nbdcopy', [broken.url('broken'), out]);
      await expect(copy).rejects.toMatchObject({ stderr: expect.stringMatching(/error/i) });
      expect(reported.length).toBeGreaterThan(0);
      for (const read of reported) {
        expect(read!.offset).toBeLessThanOrEqual(5 * MiB);
        expect(read!.offset + read!.length).toBeGreaterThan(5 * MiB);
      }
      const info = await nbdinfoJson([broken.url('broken')]);
      expect(info.exports[0]).toMatchObject({ 'export-size': aligned.length });
    } finally {
      await broken.close();
    }
  });
});
