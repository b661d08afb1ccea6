import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectFailure } from '../../core/failure.testkit.js';
import { isHoldfastError } from '../../core/index.js';
import { memoryDisk } from '../disk-images.testkit.js';
import { dirtyBitmaps, dirtyRanges, type DirtyRange } from './dirty-bitmaps.js';
import { openQcow2, readQcow2, type Qcow2Image } from './qcow2-reader.js';
import { ensureQemu, qemu, qemuWrite, scratchDirectory } from './qemu.testkit.js';

const KiB = 1024;
const MiB = 1024 * KiB;
let dir: ReturnType<typeof scratchDirectory>;

beforeAll(() => {
  ensureQemu();
  dir = scratchDirectory();
});
afterAll(() => dir.remove());

function image(name: string, size: string, options: string[] = []): string {
  const path = join(dir.path, `${name}.qcow2`);
  qemu('qemu-img', ['create', '-f', 'qcow2', ...options, path, size]);
  return path;
}

async function rangesOf(disk: Qcow2Image, name: string): Promise<DirtyRange[]> {
  const out: DirtyRange[] = [];
  for await (const range of dirtyRanges(disk, name)) out.push(range);
  return out;
}

/** Opens `path`, runs `use` and closes it. */
async function withImage<T>(path: string, use: (disk: Qcow2Image) => Promise<T>): Promise<T> {
  const disk = await openQcow2(path);
  try {
    return await use(disk);
  } finally {
    await disk.close();
  }
}

describe('dirty bitmaps written by qemu', () => {
  it('qemu-io writes mark exactly the written area, at the bitmap granularity', async () => {
    const path = image('written', '4M');
    qemu('qemu-img', ['bitmap', '--add', path, 'b0']);
    qemu('qemu-img', ['bitmap', '--add', '-g', '4096', path, 'fine']);
    qemu('qemu-img', ['bitmap', '--add', '--disable', path, 'frozen']);
    qemuWrite(path, [
      { offset: MiB, length: 64 * KiB, pattern: 0xab },
      { offset: 3 * MiB + 1000, length: 10_000, pattern: 0xcd },
    ]);
    await withImage(path, async (disk) => {
      expect(await dirtyBitmaps(disk)).toEqual([
        { name: 'b0', granularity: 64 * KiB, enabled: true, inUse: false },
        { name: 'fine', granularity: 4096, enabled: true, inUse: false },
        { name: 'frozen', granularity: 64 * KiB, enabled: false, inUse: false },
      ]);
      expect(await rangesOf(disk, 'b0')).toEqual([
        { offset: MiB, length: 64 * KiB },
        { offset: 3 * MiB, length: 64 * KiB },
      ]);
      // 3 MiB + 1000 … 3 MiB + 11000 covers 4 KiB blocks 0, 1 and 2 from 3 MiB.
      expect(await rangesOf(disk, 'fine')).toEqual([
        { offset: MiB, length: 64 * KiB },
        { offset: 3 * MiB, length: 12 * KiB },
      ]);
      expect(await rangesOf(disk, 'frozen')).toEqual([]);
    });
  });

  it('ranges crossing bitmap clusters are merged, and cut at the disk end', async () => {
    // 512-byte clusters and granularity: one bitmap cluster covers 2 MiB of guest.
    const path = image('crossing', `${6 * MiB + 512}`, ['-o', 'cluster_size=512']);
    qemu('qemu-img', ['bitmap', '--add', '-g', '512', path, 'b']);
    qemuWrite(path, [
      { offset: 2 * MiB - 1536, length: 4096, pattern: 1 },
      { offset: 6 * MiB, length: 512, pattern: 2 },
    ]);
    await withImage(path, async (disk) =>
      expect(await rangesOf(disk, 'b')).toEqual([
        { offset: 2 * MiB - 1536, length: 4096 },
        { offset: 6 * MiB, length: 512 },
      ]),
    );
  });

  it('a bitmap filled by qemu-img bitmap --merge, and one cleared', async () => {
    const path = image('merged', '2M');
    qemu('qemu-img', ['bitmap', '--add', path, 'live']);
    qemu('qemu-img', ['bitmap', '--add', '--disable', path, 'copy']);
    qemuWrite(path, [{ offset: 128 * KiB, length: 200 * KiB, pattern: 3 }]);
    qemu('qemu-img', ['bitmap', '--merge', 'live', path, 'copy']);
    qemu('qemu-img', ['bitmap', '--clear', path, 'live']);
    await withImage(path, async (disk) => {
      expect(await rangesOf(disk, 'copy')).toEqual([{ offset: 128 * KiB, length: 256 * KiB }]);
      expect(await rangesOf(disk, 'live')).toEqual([]);
    });
  });

  it('no bitmaps: none listed; an unknown name is refused', async () => {
    const path = image('plain', '1M');
    await withImage(path, async (disk) => {
      expect(await dirtyBitmaps(disk)).toEqual([]);
      const error = await expectFailure(rangesOf(disk, 'b0'));
      expect(error.message).toMatch(/no dirty bitmap named "b0"/);
    });
  });
});

describe('bitmaps that cannot be trusted or are damaged', () => {
  let bytes: Buffer;
  let directoryOffset: number;
  beforeAll(() => {
    const path = image('damage-source', '2M');
    qemu('qemu-img', ['bitmap', '--add', path, 'b0']);
    qemuWrite(path, [{ offset: 0, length: 4096, pattern: 9 }]);
    bytes = readFileSync(path);
    // The bitmaps extension is the one of type 0x23852875 after the 112-byte header.
    let at = 112;
    while (bytes.readUInt32BE(at) !== 0x23852875)
      at += 8 + Math.ceil(bytes.readUInt32BE(at + 4) / 8) * 8;
    directoryOffset = Number(bytes.readBigUInt64BE(at + 8 + 16));
  });
  const edited = (edit: (b: Buffer) => void): Promise<Qcow2Image> => {
    const copy = Buffer.from(bytes);
    edit(copy);
    return readQcow2(memoryDisk(copy), 'edited');
  };

  it('in use (a running VM, or a crash): listed as such, its ranges refused', async () => {
    const disk = await edited((b) => (b[directoryOffset + 15]! |= 1));
    expect((await dirtyBitmaps(disk))[0]?.inUse).toBe(true);
    expect((await expectFailure(rangesOf(disk, 'b0'))).message).toMatch(/in use .* full backup/);
  });

  it('stale (autoclear bit cleared by a program that does not know bitmaps): ignored', async () => {
    const disk = await edited((b) => b.writeBigUInt64BE(0n, 88));
    expect(await dirtyBitmaps(disk)).toEqual([]);
  });

  it('an all-ones table entry marks its whole range', async () => {
    const disk = await edited((b) => {
      const table = Number(b.readBigUInt64BE(directoryOffset));
      b.writeBigUInt64BE(1n, table);
    });
    expect(await rangesOf(disk, 'b0')).toEqual([{ offset: 0, length: 2 * MiB }]);
  });

  const damage: [string, (b: Buffer) => void, RegExp][] = [
    ['granularity bits', (b) => (b[directoryOffset + 17] = 40), /granularity bits 40/],
    ['type', (b) => (b[directoryOffset + 16] = 2), /type 2/],
    ['table size', (b) => b.writeUInt32BE(5, directoryOffset + 8), /table of 5 entries/],
    ['table past the end', (b) => b.writeBigUInt64BE(1n << 40n, directoryOffset), /past the end/],
    ['unknown flags', (b) => (b[directoryOffset + 14] = 1), /unknown flags/],
    ['name size', (b) => b.writeUInt16BE(0xffff, directoryOffset + 18), /name of 65535 bytes/],
    [
      'table entry past the end',
      (b) => b.writeBigUInt64BE(1n << 40n, Number(b.readBigUInt64BE(directoryOffset))),
      /not a cluster of the file/,
    ],
  ];
  for (const [name, edit, reason] of damage)
    it(`damaged ${name}: SOURCE_UNREADABLE naming it, guest reads unaffected`, async () => {
      const disk = await edited(edit);
      const error = await expectFailure(
        (async () => {
          await dirtyBitmaps(disk);
          await rangesOf(disk, 'b0');
        })(),
      );
      expect(error.code).toBe('SOURCE_UNREADABLE');
      expect(error.message).toMatch(reason);
      expect((await disk.read(0, 4096)).every((x) => x === 9)).toBe(true);
    });

  it('random damage to the directory and table: a list and ranges inside the disk, or SOURCE_UNREADABLE', async () => {
    const table = Number(bytes.readBigUInt64BE(directoryOffset));
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.tuple(
            fc.constantFrom(directoryOffset, table),
            fc.nat({ max: 63 }),
            fc.integer({ min: 1, max: 255 }),
          ),
          { minLength: 1, maxLength: 6 },
        ),
        async (flips) => {
          const copy = Buffer.from(bytes);
          for (const [base, at, mask] of flips) copy[base + at]! ^= mask;
          try {
            const disk = await readQcow2(memoryDisk(copy), 'flipped');
            for (const bitmap of await dirtyBitmaps(disk)) {
              if (bitmap.inUse) continue;
              for await (const r of dirtyRanges(disk, bitmap.name)) {
                expect(r.length).toBeGreaterThan(0);
                expect(r.offset + r.length).toBeLessThanOrEqual(disk.size);
              }
            }
          } catch (error) {
            if (!isHoldfastError(error, 'SOURCE_UNREADABLE')) throw error;
          }
        },
      ),
      { numRuns: 300, seed: 0xb17 },
    );
  });
});
