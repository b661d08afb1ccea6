import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectFailure } from '../../core/failure.testkit.js';
import { memoryDisk } from '../disk-images.testkit.js';
import { openQcow2, readQcow2 } from './qcow2-reader.js';
import {
  compressQcow2,
  ensureQemu,
  qemu,
  qemuWrite,
  scratchDirectory,
  tables,
} from './qemu.testkit.js';

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
      compressQcow2(raw, path, `compression_type=${compression}`);
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
