import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectFailure } from '../../core/failure.testkit.js';
import { isHoldfastError } from '../../core/index.js';
import { memoryDisk } from '../disk-images.testkit.js';
import type { DiskReader } from '../partition-table.js';
import { openQcow2, readQcow2 } from './qcow2-reader.js';
import { ensureQemu, qemu, qemuWrite, scratchDirectory } from './qemu.testkit.js';

const KiB = 1024;
const MiB = 1024 * KiB;
let dir: ReturnType<typeof scratchDirectory>;
/** A 2 MiB v3 image with data in its first clusters, made by qemu. */
let pristine: Buffer;

beforeAll(() => {
  ensureQemu();
  dir = scratchDirectory();
  const path = join(dir.path, 'pristine.qcow2');
  qemu('qemu-img', ['create', '-f', 'qcow2', path, '2M']);
  qemuWrite(path, [{ offset: 0, length: 192 * KiB, pattern: 0x5a }]);
  pristine = readFileSync(path);
});
afterAll(() => dir.remove());

/** Writes `image` under a new name and returns the error opening and reading it gives. */
async function failureOf(name: string, image: Buffer): Promise<string> {
  const path = join(dir.path, `${name}.qcow2`);
  writeFileSync(path, image);
  const error = await expectFailure(
    (async () => {
      const disk = await openQcow2(path);
      try {
        await disk.read(0, disk.size);
      } finally {
        await disk.close();
      }
    })(),
  );
  expect(error.code).toBe('SOURCE_UNREADABLE');
  expect(error.message).toContain(path);
  return error.message;
}

/** A copy of the pristine image with `edit` applied. */
function damaged(edit: (image: Buffer) => void): Buffer {
  const copy = Buffer.from(pristine);
  edit(copy);
  return copy;
}

/** Host offsets of the L1 table and of the L2 entry for guest cluster 0. */
function tables(image: Buffer): { l1: number; l2Entry: number } {
  const l1 = Number(image.readBigUInt64BE(40));
  const l2 = Number(image.readBigUInt64BE(l1) & 0x00fffffffffffe00n);
  return { l1, l2Entry: l2 };
}

describe('damaged header fields are refused, each naming the reason', () => {
  const cases: [string, (image: Buffer) => void, RegExp][] = [
    ['magic', (b) => b.write('QFX', 0, 'latin1'), /qcow2 magic/],
    ['version', (b) => b.writeUInt32BE(4, 4), /version 4 is not supported/],
    ['cluster_bits too small', (b) => b.writeUInt32BE(8, 20), /cluster_bits 8/],
    ['cluster_bits too large', (b) => b.writeUInt32BE(40, 20), /cluster_bits 40/],
    ['header_length', (b) => b.writeUInt32BE(101, 100), /header_length 101/],
    ['encryption', (b) => b.writeUInt32BE(2, 32), /encrypted \(LUKS\)/],
    ['corrupt bit', (b) => b.writeBigUInt64BE(2n, 72), /marked it corrupt/],
    ['unknown incompatible bit', (b) => b.writeBigUInt64BE(1n << 9n, 72), /bit 9/],
    ['unknown compression type', (b) => (b[104] = 7), /compression type 7/],
    ['zstd without its feature bit', (b) => (b[104] = 1), /without its incompatible/],
    ['virtual size beyond 2^53', (b) => b.writeBigUInt64BE(1n << 60n, 24), /virtual size/],
    ['virtual size beyond the L1 table', (b) => b.writeBigUInt64BE(1n << 40n, 24), /fewer than/],
    ['L1 size beyond 32 MiB', (b) => b.writeUInt32BE(0x7fffffff, 36), /larger than 32 MiB/],
    [
      'unaligned L1 offset',
      (b) => b.writeBigUInt64BE(b.readBigUInt64BE(40) + 8n, 40),
      /L1 table offset .* not a cluster/,
    ],
    ['L1 in the header', (b) => b.writeBigUInt64BE(0n, 40), /L1 table offset 0/],
    ['L1 past the end', (b) => b.writeBigUInt64BE(1n << 40n, 40), /L1 table lies past the end/],
    [
      'an extension running past the first cluster',
      (b) => {
        b.writeUInt32BE(0x1234, 112);
        b.writeUInt32BE(0xfffffff0, 116);
      },
      /extension 0x1234 .* runs past the first cluster/,
    ],
  ];
  for (const [name, edit, reason] of cases)
    it(name, async () => expect(await failureOf(name, damaged(edit))).toMatch(reason));

  it('a file shorter than a header', async () => {
    expect(await failureOf('short', pristine.subarray(0, 50))).toMatch(/shorter than a qcow2/);
  });
});

describe('table entries are checked before use', () => {
  it('an L1 entry pointing past the end of the file', async () => {
    const image = damaged((b) => b.writeBigUInt64BE((1n << 40n) | (1n << 63n), tables(b).l1));
    expect(await failureOf('l1-past-end', image)).toMatch(
      /L1 entry 0 points at an L2 table .* past the end/,
    );
  });
  it('an L1 entry with reserved bits', async () => {
    const image = damaged((b) => (b[tables(b).l1 + 7] = 0x01));
    expect(await failureOf('l1-reserved', image)).toMatch(/L1 entry 0 has reserved bits/);
  });
  it('an L2 entry pointing past the end of the file', async () => {
    const image = damaged((b) => b.writeBigUInt64BE((1n << 40n) | (1n << 63n), tables(b).l2Entry));
    expect(await failureOf('l2-past-end', image)).toMatch(
      /guest offset 0 points at .* past the end/,
    );
  });
  it('an unaligned L2 entry', async () => {
    const image = damaged((b) => b.writeBigUInt64BE(0x30200n | (1n << 63n), tables(b).l2Entry));
    expect(await failureOf('l2-unaligned', image)).toMatch(/not a cluster after the header/);
  });
  it('a zero flag in a version 2 image', async () => {
    const image = damaged((b) => {
      b.writeUInt32BE(2, 4);
      b.writeBigUInt64BE(1n, tables(b).l2Entry);
    });
    expect(await failureOf('v2-zero', image)).toMatch(/zero flag, which version 2/);
  });

  for (const compression of ['zlib', 'zstd'])
    it(`a ${compression} compressed cluster holding garbage`, async () => {
      const raw = join(dir.path, `${compression}.raw`);
      writeFileSync(raw, Buffer.alloc(MiB, 'compressible text '));
      const path = join(dir.path, `${compression}.qcow2`);
      qemu('qemu-img', [
        'convert',
        '-f',
        'raw',
        '-O',
        'qcow2',
        '-c',
        '-o',
        `compression_type=${compression}`,
        raw,
        path,
      ]);
      const image = readFileSync(path);
      const entry = image.readBigUInt64BE(tables(image).l2Entry);
      expect(entry & (1n << 62n)).not.toBe(0n);
      const host = Number(entry & ((1n << 54n) - 1n));
      image.fill(0xff, host, host + 64);
      expect(await failureOf(`${compression}-garbage`, image)).toMatch(
        new RegExp(
          `compressed cluster of guest offset 0 cannot be read: its ${compression === 'zlib' ? 'deflate' : 'zstd'} data is damaged`,
        ),
      );
    });
});

describe('features that are not supported are refused with what to do', () => {
  it('a backing file: says the chain must be flattened', async () => {
    const base = join(dir.path, 'base.qcow2');
    const overlay = join(dir.path, 'overlay.qcow2');
    qemu('qemu-img', ['create', '-f', 'qcow2', base, '1M']);
    qemu('qemu-img', ['create', '-f', 'qcow2', '-b', base, '-F', 'qcow2', overlay]);
    const error = await expectFailure(openQcow2(overlay));
    expect(error.code).toBe('SOURCE_UNREADABLE');
    expect(error.message).toContain(`backing file "${base}"`);
    expect(error.message).toMatch(/qemu-img convert/);
  });
  it('an external data file', async () => {
    const path = join(dir.path, 'external.qcow2');
    qemu('qemu-img', ['create', '-f', 'qcow2', '-o', `data_file=${path}.data`, path, '1M']);
    const error = await expectFailure(openQcow2(path));
    expect(error.message).toMatch(/external data file .*external\.qcow2\.data/);
  });
  it('extended L2 entries', async () => {
    const path = join(dir.path, 'extended.qcow2');
    qemu('qemu-img', ['create', '-f', 'qcow2', '-o', 'extended_l2=on', path, '1M']);
    expect((await expectFailure(openQcow2(path))).message).toMatch(/extended L2 entries/);
  });
  it('reads an image marked dirty (lazy refcounts) since reading never uses refcounts', async () => {
    const image = damaged((b) => b.writeBigUInt64BE(1n, 72));
    const disk = await readQcow2(memoryDisk(image), 'dirty');
    expect(disk.header.dirty).toBe(true);
    expect((await disk.read(0, 192 * KiB)).every((x) => x === 0x5a)).toBe(true);
  });
});

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
      qemu('qemu-img', [
        'convert',
        '-f',
        'raw',
        '-O',
        'qcow2',
        '-c',
        '-o',
        `cluster_size=4096,compression_type=${compression}`,
        raw,
        path,
      ]);
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
