import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isHoldfastError } from '../../core/index.js';
import { memoryDisk } from '../disk-images.testkit.js';
import type { DiskReader } from '../partition-table.js';
import { readQcow2 } from './qcow2-reader.js';
import {
  compressQcow2,
  ensureQemu,
  qemu,
  qemuWrite,
  scratchDirectory,
  tables,
} from './qemu.testkit.js';

const KiB = 1024;
let dir: ReturnType<typeof scratchDirectory>;

beforeAll(() => {
  ensureQemu();
  dir = scratchDirectory();
});
afterAll(() => dir.remove());

/** A reader that counts what is asked of it. */
function counted(image: Buffer): { file: DiskReader; reads: () => number } {
  const inner = memoryDisk(image);
  let reads = 0;
  return {
    file: { size: inner.size, read: (o, l) => (reads++, inner.read(o, l)) },
    reads: () => reads,
  };
}

describe('random damage to the first clusters', () => {
  it('always gives SOURCE_UNREADABLE or the right bytes, within bounded reads', async () => {
    const path = join(dir.path, 'small.qcow2');
    qemu('qemu-img', ['create', '-f', 'qcow2', '-o', 'cluster_size=4096', path, '256K']);
    qemuWrite(path, [
      { offset: 0, length: 20 * KiB, pattern: 0x61 },
      { offset: 64 * KiB, length: 8 * KiB, zero: true },
      { offset: 100 * KiB, length: 30 * KiB, pattern: 0x62 },
    ]);
    const small = readFileSync(path);
    const good = await readQcow2(memoryDisk(small), 'small');
    const expected = await good.read(0, good.size);
    // Bytes a flip may change without being detectable: the header cluster, L1 and L2 tables.
    const metadata = new Set<number>();
    const { l1 } = tables(small);
    for (let b = 0; b < 4096; b++) metadata.add(b);
    for (let b = l1; b < l1 + 8; b++) metadata.add(b);
    const l2 = Number(small.readBigUInt64BE(l1) & 0x00fffffffffffe00n);
    for (let b = l2; b < l2 + 4096; b++) metadata.add(b);
    // Where each data byte of the pristine image shows in the guest.
    const guestOf = new Map<number, number>();
    for (let cluster = 0; cluster < good.size / 4096; cluster++) {
      const entry = small.readBigUInt64BE(l2 + cluster * 8);
      const host = Number(entry & 0x00fffffffffffe00n);
      if (host !== 0 && (entry & 1n) === 0n)
        for (let b = 0; b < 4096; b++) guestOf.set(host + b, cluster * 4096 + b);
    }
    const seen = { exact: 0, refused: 0 };
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.tuple(
            fc.integer({ min: 0, max: Math.min(small.length, 12 * 4096) - 1 }),
            fc.integer({ min: 1, max: 255 }),
          ),
          { minLength: 1, maxLength: 8 },
        ),
        async (flips) => {
          const image = Buffer.from(small);
          const want = Buffer.from(expected);
          let exact = true;
          for (const [at, mask] of flips) {
            image[at]! ^= mask;
            if (metadata.has(at)) exact = false;
            const guest = guestOf.get(at);
            if (guest !== undefined) want[guest]! ^= mask;
          }
          const { file, reads } = counted(image);
          try {
            const disk = await readQcow2(file, 'flipped');
            const got = await disk.read(0, disk.size);
            if (exact) {
              expect(got.equals(want)).toBe(true);
              seen.exact++;
            } else expect(got.length).toBe(disk.size);
          } catch (error) {
            if (!isHoldfastError(error, 'SOURCE_UNREADABLE')) throw error;
            seen.refused++;
          }
          expect(reads()).toBeLessThan(100);
        },
      ),
      { numRuns: 400, seed: 0x9c02 },
    );
    // Both outcomes happened: the property checked exact reads and refusals, not one path only.
    expect(seen.exact).toBeGreaterThan(20);
    expect(seen.refused).toBeGreaterThan(20);
  });

  for (const compression of ['zlib', 'zstd'])
    it(`in a ${compression}-compressed image: SOURCE_UNREADABLE or a full read, never a crash`, async () => {
      const raw = join(dir.path, `small-${compression}.raw`);
      const text = Buffer.alloc(256 * KiB);
      for (let i = 0; i < text.length; i += 64) text.write(`line ${i} of a compressible disk\n`, i);
      writeFileSync(raw, text);
      const path = join(dir.path, `small-${compression}.qcow2`);
      compressQcow2(raw, path, `cluster_size=4096,compression_type=${compression}`);
      const small = readFileSync(path);
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.tuple(fc.nat({ max: small.length - 1 }), fc.integer({ min: 1, max: 255 })), {
            minLength: 1,
            maxLength: 8,
          }),
          async (flips) => {
            const image = Buffer.from(small);
            for (const [at, mask] of flips) image[at]! ^= mask;
            const { file, reads } = counted(image);
            try {
              const disk = await readQcow2(file, 'flipped');
              expect((await disk.read(0, disk.size)).length).toBe(disk.size);
            } catch (error) {
              if (!isHoldfastError(error, 'SOURCE_UNREADABLE')) throw error;
            }
            expect(reads()).toBeLessThan(100);
          },
        ),
        { numRuns: 300, seed: 0x9c03 },
      );
    });
});
