import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectFailure } from '../../core/failure.testkit.js';
import { readGuestPieces } from './guest-pieces.js';
import { refcountLayout } from './qcow2-layout.js';
import { openQcow2 } from './qcow2-reader.js';
import { writeQcow2, type GuestPiece } from './qcow2-writer.js';
import {
  compressQcow2,
  ensureQemu,
  qemu,
  qemuRaw,
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

/** A disk with random runs, text runs and zeros, and its bytes as unaligned pieces with gaps. */
function sampleDisk(size: number, seed: number): { disk: Buffer; pieces: GuestPiece[] } {
  const random = seededRandom(seed);
  const disk = Buffer.alloc(size);
  for (let i = 0; i < 10 && size > 0; i++) {
    const offset = Math.floor(random() * size);
    const length = Math.min(size - offset, 1 + Math.floor(random() * (size / 6)));
    if (i % 2 === 0) for (let b = 0; b < length; b++) disk[offset + b] = Math.floor(random() * 256);
    else disk.fill(`piece ${i}`, offset, offset + length);
  }
  const pieces: GuestPiece[] = [];
  for (let offset = 0; offset < size;) {
    const length = Math.min(size - offset, 1 + Math.floor(random() * 200 * KiB));
    const data = disk.subarray(offset, offset + length);
    // A restore stream leaves holes out; the writer must treat gaps as zeros.
    if (!data.every((b) => b === 0)) pieces.push({ offset, data: Buffer.from(data) });
    offset += length;
  }
  return { disk, pieces };
}

/** qemu-img check finds no errors, no leaks and no corruptions. */
function expectCleanCheck(path: string): void {
  const report = JSON.parse(qemu('qemu-img', ['check', '--output=json', path])) as Record<
    string,
    unknown
  >;
  expect(report['check-errors']).toBe(0);
  expect(report['corruptions'] ?? 0).toBe(0);
  expect(report['leaks'] ?? 0).toBe(0);
}

function nonZeroClusters(disk: Buffer, clusterSize: number): number {
  let count = 0;
  for (let at = 0; at < disk.length; at += clusterSize)
    if (!disk.subarray(at, at + clusterSize).every((b) => b === 0)) count++;
  return count;
}

describe('writeQcow2', () => {
  const variants: [string, number, number | undefined][] = [
    ['64 KiB clusters, size not a multiple of them', 3 * MiB + 512, undefined],
    ['4 KiB clusters', 2 * MiB, 4096],
    ['2 MiB clusters', 5 * MiB, 2 * MiB],
    ['512-byte clusters: many L2 tables, a refcount table of several clusters', 8 * MiB, 512],
  ];
  variants.forEach(([name, size, clusterSize], i) => {
    it(`${name}: qemu-img check is clean and qemu reads the same bytes`, async () => {
      const { disk, pieces } = sampleDisk(size, 40 + i);
      const path = join(dir.path, `written-${i}.qcow2`);
      const options = clusterSize === undefined ? {} : { clusterSize };
      const result = await writeQcow2(path, size, pieces, options);
      expectCleanCheck(path);
      expect(qemuRaw(path).equals(disk)).toBe(true);
      expect(result.dataClusters).toBe(nonZeroClusters(disk, clusterSize ?? 64 * KiB));
      expect(readFileSync(path).length).toBe(result.fileSize);
      const image = await openQcow2(path);
      expect((await image.read(0, size)).equals(disk)).toBe(true);
      await image.close();
    });
  });

  it('a fully written disk of 512-byte clusters needs a refcount table of several clusters', async () => {
    const size = 8 * MiB;
    const disk = Buffer.alloc(size, 'full ');
    const path = join(dir.path, 'full.qcow2');
    await writeQcow2(path, size, [{ offset: 0, data: disk }], { clusterSize: 512 });
    expect(readFileSync(path).readUInt32BE(56)).toBeGreaterThan(1);
    expectCleanCheck(path);
    expect(qemuRaw(path).equals(disk)).toBe(true);
  });

  it('a large sparse disk stores only its data', async () => {
    const size = 64 * 1024 * MiB;
    const pieces = [
      { offset: 0, data: Buffer.alloc(4096, 1) },
      { offset: 20 * 1024 * MiB + 512, data: Buffer.alloc(70_000, 2) },
      { offset: size - 4096, data: Buffer.alloc(4096, 3) },
    ];
    const path = join(dir.path, 'sparse.qcow2');
    const result = await writeQcow2(path, size, pieces);
    expect(result.dataClusters).toBe(4);
    expect(result.fileSize).toBeLessThan(MiB);
    expectCleanCheck(path);
    const image = await openQcow2(path);
    expect((await image.read(20 * 1024 * MiB, 70_512)).subarray(512).equals(pieces[1]!.data)).toBe(
      true,
    );
    expect((await image.read(size - 4096, 4096)).equals(pieces[2]!.data)).toBe(true);
    await image.close();
    const map = JSON.parse(qemu('qemu-img', ['map', '--output=json', path])) as {
      data: boolean;
      length: number;
    }[];
    expect(map.filter((e) => e.data).reduce((n, e) => n + e.length, 0)).toBe(4 * 64 * KiB);
  });

  it('an empty disk and a zero-length disk', async () => {
    for (const size of [0, 10 * MiB]) {
      const path = join(dir.path, `empty-${size}.qcow2`);
      const result = await writeQcow2(path, size, [
        { offset: 0, data: Buffer.alloc(size > 0 ? MiB : 0) },
      ]);
      expect(result.dataClusters).toBe(0);
      expectCleanCheck(path);
      expect(qemuRaw(path).equals(Buffer.alloc(size))).toBe(true);
    }
  });

  it('copies a compressed qcow2 image through the reader: same guest bytes', async () => {
    const raw = join(dir.path, 'copy-source.raw');
    writeFileSync(raw, sampleDisk(3 * MiB, 77).disk);
    const source = join(dir.path, 'copy-source.qcow2');
    compressQcow2(raw, source, 'compression_type=zstd');
    const image = await openQcow2(source);
    const target = join(dir.path, 'copy-target.qcow2');
    await writeQcow2(
      target,
      image.size,
      readGuestPieces(image, image.allocatedExtents(), { chunkSize: 100_000 }),
    );
    await image.close();
    expectCleanCheck(target);
    expect(qemuRaw(target).equals(readFileSync(raw))).toBe(true);
  });
});

describe('writeQcow2 leaves no half-written image', () => {
  async function* failingAfter(pieces: number): AsyncGenerator<GuestPiece> {
    for (let i = 0; i < pieces; i++) yield { offset: i * MiB, data: Buffer.alloc(MiB, i + 1) };
    throw new Error('the backup stream broke');
  }
  const leftovers = (): string[] => readdirSync(dir.path).filter((n) => n.includes('.partial'));

  it('when the pieces fail midway: no file at the path, no temporary file, the old one kept', async () => {
    const path = join(dir.path, 'broken.qcow2');
    writeFileSync(path, 'the previous image');
    await expect(writeQcow2(path, 8 * MiB, failingAfter(3))).rejects.toThrow(
      'the backup stream broke',
    );
    expect(readFileSync(path, 'utf8')).toBe('the previous image');
    expect(leftovers()).toEqual([]);
  });

  it('when cancelled', async () => {
    const controller = new AbortController();
    const path = join(dir.path, 'cancelled.qcow2');
    async function* pieces(): AsyncGenerator<GuestPiece> {
      for (let i = 0; i < 8; i++) {
        if (i === 4) controller.abort();
        yield { offset: i * MiB, data: Buffer.alloc(MiB, 7) };
      }
    }
    const error = await expectFailure(
      writeQcow2(path, 8 * MiB, pieces(), { signal: controller.signal }),
    );
    expect(error.code).toBe('CANCELLED');
    expect(readdirSync(dir.path)).not.toContain('cancelled.qcow2');
    expect(leftovers()).toEqual([]);
  });

  it('refuses pieces out of order, sizes qcow2 cannot hold and a target that cannot be created', async () => {
    const path = join(dir.path, 'refused.qcow2');
    const backwards = [
      { offset: MiB, data: Buffer.alloc(10, 1) },
      { offset: 0, data: Buffer.alloc(10, 1) },
    ];
    expect((await expectFailure(writeQcow2(path, 2 * MiB, backwards))).code).toBe('INTERNAL');
    const past = [{ offset: 2 * MiB - 5, data: Buffer.alloc(10, 1) }];
    expect((await expectFailure(writeQcow2(path, 2 * MiB, past))).code).toBe('INTERNAL');
    expect((await expectFailure(writeQcow2(path, 1000, []))).code).toBe('RESTORE_TARGET_INVALID');
    expect((await expectFailure(writeQcow2(path, MiB, [], { clusterSize: 3000 }))).code).toBe(
      'RESTORE_TARGET_INVALID',
    );
    const missing = join(dir.path, 'no-such-directory', 'x.qcow2');
    expect((await expectFailure(writeQcow2(missing, MiB, []))).code).toBe('RESTORE_TARGET_INVALID');
    expect(readdirSync(dir.path)).not.toContain('refused.qcow2');
    expect(leftovers()).toEqual([]);
  });
});

describe('refcountLayout', () => {
  it('covers every cluster including its own, with no spare block', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000_000 }),
        fc.integer({ min: 9, max: 21 }),
        (clusters, bits) => {
          const clusterSize = 2 ** bits;
          const perBlock = clusterSize / 2;
          const { blocks, tableClusters } = refcountLayout(clusters, clusterSize);
          const total = clusters + blocks + tableClusters;
          expect(blocks * perBlock).toBeGreaterThanOrEqual(total);
          expect((blocks - 1) * perBlock).toBeLessThan(total);
          expect(tableClusters * clusterSize).toBeGreaterThanOrEqual(blocks * 8);
          expect((tableClusters - 1) * clusterSize).toBeLessThan(blocks * 8);
        },
      ),
      { seed: 0x7c5, numRuns: 500 },
    );
  });
});
