import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectImageFormat } from './image-format.js';
import { openQcow2, type GuestExtent } from './qcow2-reader.js';
import {
  ensureQemu,
  qemu,
  qemuRaw,
  qemuWrite,
  scratchDirectory,
  seededRandom,
} from './qemu.testkit.js';

const KiB = 1024;
const MiB = 1024 * KiB;
let dir: ReturnType<typeof scratchDirectory>;

beforeAll(() => {
  ensureQemu();
  dir = scratchDirectory();
});
afterAll(() => dir.remove());

/**
 * A raw disk of `size` bytes with a mix qemu stores differently: random (incompressible) runs,
 * repeated patterns (compressible), unaligned runs and long zero holes.
 */
function rawSource(name: string, size: number, seed: number): string {
  const random = seededRandom(seed);
  const disk = Buffer.alloc(size);
  for (let i = 0; i < 12; i++) {
    const offset = Math.floor(random() * size);
    const length = Math.min(size - offset, 1 + Math.floor(random() * 300 * KiB));
    if (i % 2 === 0) for (let b = 0; b < length; b++) disk[offset + b] = Math.floor(random() * 256);
    else disk.fill(`holdfast ${i} `, offset, offset + length);
  }
  disk.fill(0xee, size - 700, size - 100); // near the end, inside a partial last cluster
  const path = join(dir.path, `${name}.raw`);
  writeFileSync(path, disk);
  return path;
}

/** Turns a raw source into a qcow2 image with qemu-img convert and the given options. */
function convert(name: string, source: string, options: string[]): string {
  const path = join(dir.path, `${name}.qcow2`);
  qemu('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', ...options, source, path]);
  return path;
}

/** Runs of one kind merged, so two descriptions of the same map compare equal. */
function merged(extents: readonly GuestExtent[]): GuestExtent[] {
  const out: GuestExtent[] = [];
  for (const e of extents) {
    const last = out[out.length - 1];
    if (last && last.zero === e.zero && last.offset + last.length === e.offset)
      out[out.length - 1] = { ...last, length: last.length + e.length };
    else out.push(e);
  }
  return out;
}

/** What `qemu-img map` says is stored: data, and clusters recorded as zeros. */
function qemuMap(path: string): GuestExtent[] {
  const entries = JSON.parse(qemu('qemu-img', ['map', '--output=json', path])) as {
    start: number;
    length: number;
    present: boolean;
    data: boolean;
  }[];
  return merged(
    entries
      .filter((e) => e.present)
      .map((e) => ({ offset: e.start, length: e.length, zero: !e.data })),
  );
}

async function expectSameAsQemu(path: string, seed: number): Promise<void> {
  const expected = qemuRaw(path);
  const disk = await openQcow2(path);
  try {
    expect(disk.format).toBe('qcow2');
    expect(disk.size).toBe(expected.length);
    expect((await disk.read(0, disk.size)).equals(expected)).toBe(true);
    const random = seededRandom(seed);
    for (let i = 0; i < 200; i++) {
      const offset = Math.floor(random() * disk.size);
      const length = Math.floor(random() * Math.min(disk.size - offset, 300 * KiB));
      const got = await disk.read(offset, length);
      if (!got.equals(expected.subarray(offset, offset + length)))
        expect.fail(`read of ${length} bytes at ${offset} differs from qemu's`);
    }
    const extents: GuestExtent[] = [];
    for await (const e of disk.allocatedExtents()) extents.push(e);
    expect(merged(extents)).toEqual(qemuMap(path));
    // Everything outside the data extents reads as zeros: a backup may skip it.
    let cursor = 0;
    for (const e of extents.filter((x) => !x.zero)) {
      expect(expected.subarray(cursor, e.offset).every((b) => b === 0)).toBe(true);
      cursor = e.offset + e.length;
    }
    expect(expected.subarray(cursor).every((b) => b === 0)).toBe(true);
  } finally {
    await disk.close();
  }
}

describe('openQcow2 reads what qemu reads', () => {
  const variants: [string, string[], number][] = [
    ['v3, 64 KiB clusters', [], 3 * MiB + 512],
    ['v3, 4 KiB clusters', ['-o', 'cluster_size=4096'], 3 * MiB],
    ['v3, 512-byte clusters', ['-o', 'cluster_size=512'], 1 * MiB],
    ['v3, 2 MiB clusters', ['-o', 'cluster_size=2M'], 5 * MiB],
    ['v2 (compat=0.10)', ['-o', 'compat=0.10'], 3 * MiB],
    ['deflate-compressed', ['-c'], 3 * MiB + 4096],
    ['deflate-compressed, 512-byte clusters', ['-c', '-o', 'cluster_size=512'], 1 * MiB],
    ['deflate-compressed, 2 MiB clusters', ['-c', '-o', 'cluster_size=2M'], 5 * MiB],
    ['zstd-compressed', ['-c', '-o', 'compression_type=zstd'], 3 * MiB],
    [
      'zstd-compressed, 4 KiB clusters',
      ['-c', '-o', 'compression_type=zstd,cluster_size=4096'],
      2 * MiB,
    ],
    ['deflate-compressed v2', ['-c', '-o', 'compat=0.10'], 2 * MiB],
  ];
  variants.forEach(([name, options, size], i) => {
    it(name, async () => {
      const path = convert(`variant-${i}`, rawSource(`variant-${i}`, size, 100 + i), options);
      await expectSameAsQemu(path, 200 + i);
    });
  });

  it('zero-flag clusters, unaligned writes and rewrites made by qemu-io', async () => {
    const path = join(dir.path, 'written.qcow2');
    qemu('qemu-img', ['create', '-f', 'qcow2', path, '4M']);
    qemuWrite(path, [
      { offset: 0, length: 256 * KiB, pattern: 0x11 },
      { offset: 100_000, length: 5000, pattern: 0x22 },
      { offset: 64 * KiB, length: 128 * KiB, zero: true },
      { offset: 3 * MiB + 512, length: 1536, pattern: 0x33 },
      { offset: 2 * MiB, length: 64 * KiB, zero: true },
    ]);
    const disk = await openQcow2(path);
    const kinds: GuestExtent[] = [];
    for await (const e of disk.allocatedExtents()) kinds.push(e);
    await disk.close();
    expect(kinds).toContainEqual({ offset: 64 * KiB, length: 128 * KiB, zero: true });
    await expectSameAsQemu(path, 7);
  });

  it('an empty image and a zero-length disk', async () => {
    const empty = join(dir.path, 'empty.qcow2');
    qemu('qemu-img', ['create', '-f', 'qcow2', empty, '10M']);
    await expectSameAsQemu(empty, 8);
    const nothing = join(dir.path, 'nothing.qcow2');
    qemu('qemu-img', ['create', '-f', 'qcow2', nothing, '0']);
    const disk = await openQcow2(nothing);
    expect(disk.size).toBe(0);
    expect((await disk.read(0, 0)).length).toBe(0);
    await disk.close();
  });

  it('refuses reads outside the disk', async () => {
    const path = join(dir.path, 'bounds.qcow2');
    qemu('qemu-img', ['create', '-f', 'qcow2', path, '1M']);
    const disk = await openQcow2(path);
    await expect(disk.read(MiB - 10, 11)).rejects.toMatchObject({ code: 'SOURCE_UNREADABLE' });
    await expect(disk.read(-1, 1)).rejects.toMatchObject({ code: 'SOURCE_UNREADABLE' });
    await disk.close();
  });
});

describe('detectImageFormat', () => {
  it('tells qcow2 from raw by the magic', async () => {
    const image = join(dir.path, 'detect.qcow2');
    qemu('qemu-img', ['create', '-f', 'qcow2', image, '1M']);
    const raw = join(dir.path, 'detect.raw');
    writeFileSync(raw, Buffer.from('QFI'));
    const tiny = join(dir.path, 'tiny.raw');
    writeFileSync(tiny, Buffer.alloc(0));
    expect(await detectImageFormat(image)).toBe('qcow2');
    expect(await detectImageFormat(raw)).toBe('raw');
    expect(await detectImageFormat(tiny)).toBe('raw');
  });
});
