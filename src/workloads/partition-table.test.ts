import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HoldfastError } from '../core/index.js';
import { gptImage, mbrEntry, memoryDisk, type GptPartitionSpec } from './disk-images.testkit.js';
import { readPartitionTable } from './partition-table.js';
import { expectFailure } from '../core/failure.testkit.js';

const SECTOR = 512;
const LINUX = '0FC63DAF-8483-4772-8E79-3D69D8477DE4';
const EFI = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B';
const PARTS: GptPartitionSpec[] = [
  { type: EFI, uuid: '11111111-2222-4333-8444-555555555555', first: 2048, last: 4095, name: 'EFI' },
  {
    type: LINUX,
    uuid: 'A1B2C3D4-E5F6-4789-8ABC-DEF012345678',
    first: 4096,
    last: 8191,
    name: 'root ✓',
  },
];

function flip(image: Buffer, at: number): void {
  image[at] = (image[at] ?? 0) ^ 0xff;
}

describe('readPartitionTable', () => {
  it('reads a GPT: offsets, sizes, types, GUIDs and names', async () => {
    const table = await readPartitionTable(memoryDisk(gptImage(10_000, PARTS)));
    expect(table.scheme).toBe('gpt');
    expect(table.warnings).toEqual([]);
    expect(table.diskUuid).toBe('5A3C1B2D-0000-4000-8000-00000000D15C');
    expect(table.partitions).toEqual([
      {
        number: 1,
        offset: 2048 * SECTOR,
        size: 2048 * SECTOR,
        type: EFI,
        kind: 'efi',
        uuid: PARTS[0]!.uuid,
        name: 'EFI',
      },
      {
        number: 2,
        offset: 4096 * SECTOR,
        size: 4096 * SECTOR,
        type: LINUX,
        kind: 'linux',
        uuid: PARTS[1]!.uuid,
        name: 'root ✓',
      },
    ]);
  });

  it('reads the backup GPT when the primary header is damaged, and says so', async () => {
    const image = gptImage(10_000, PARTS);
    flip(image, SECTOR + 40);
    const table = await readPartitionTable(memoryDisk(image));
    expect(table.partitions.map((p) => p.name)).toEqual(['EFI', 'root ✓']);
    expect(table.warnings).toEqual([
      'the primary GPT header is damaged (header checksum mismatch); read the backup instead',
    ]);
  });

  it('refuses a GPT whose headers are both damaged, naming both problems', async () => {
    const image = gptImage(10_000, PARTS);
    flip(image, SECTOR + 40);
    flip(image, 2 * SECTOR + 5); // the primary entry array
    flip(image, (10_000 - 1) * SECTOR + 80); // the backup header's entry count
    const error = await expectFailure(readPartitionTable(memoryDisk(image)));
    expect(error.code).toBe('SOURCE_UNREADABLE');
    expect(error.message).toMatch(
      /primary header: header checksum mismatch; backup header: header checksum mismatch/,
    );
  });

  it('refuses a GPT partition past the end of the disk, and overlapping ones', async () => {
    const beyond = gptImage(10_000, [{ ...PARTS[1]!, last: 20_000 }]);
    expect((await expectFailure(readPartitionTable(memoryDisk(beyond)))).message).toMatch(
      /partition 1 \(sectors 4096–20000\) lies outside the disk's usable area/,
    );
    const overlapping = gptImage(10_000, [PARTS[0]!, { ...PARTS[1]!, first: 4000 }]);
    expect((await expectFailure(readPartitionTable(memoryDisk(overlapping)))).message).toMatch(
      /partitions 1 and 2 overlap/,
    );
  });

  it('reads an MBR with primary and logical partitions, numbered as Linux does', async () => {
    const image = Buffer.alloc(20_000 * SECTOR);
    mbrEntry(image, 0, 0x83, 2048, 2048);
    mbrEntry(image, 1, 0x05, 8192, 8192); // extended: two logicals
    const ebr1 = image.subarray(8192 * SECTOR, 8193 * SECTOR);
    mbrEntry(ebr1, 0, 0x82, 63, 1000);
    mbrEntry(ebr1, 1, 0x05, 2048, 4096);
    const ebr2 = image.subarray((8192 + 2048) * SECTOR, (8192 + 2049) * SECTOR);
    mbrEntry(ebr2, 0, 0x83, 63, 2000);
    const table = await readPartitionTable(memoryDisk(image));
    expect(table.scheme).toBe('mbr');
    expect(
      table.partitions.map((p) => [p.number, p.offset / SECTOR, p.size / SECTOR, p.kind]),
    ).toEqual([
      [1, 2048, 2048, 'linux'],
      [5, 8192 + 63, 1000, 'swap'],
      [6, 8192 + 2048 + 63, 2000, 'linux'],
    ]);
  });

  it('stops at a loop in the chain of logical partitions', async () => {
    const image = Buffer.alloc(20_000 * SECTOR);
    mbrEntry(image, 0, 0x05, 8192, 8192);
    const ebr = image.subarray(8192 * SECTOR, 8193 * SECTOR);
    mbrEntry(ebr, 0, 0x83, 63, 100);
    mbrEntry(ebr, 1, 0x05, 0, 8192); // points back at itself
    expect((await expectFailure(readPartitionTable(memoryDisk(image)))).message).toMatch(/loops/);
  });

  it('refuses an MBR partition past the end of the disk', async () => {
    const image = Buffer.alloc(4096 * SECTOR);
    mbrEntry(image, 0, 0x83, 2048, 100_000);
    expect((await expectFailure(readPartitionTable(memoryDisk(image)))).message).toMatch(
      /partition 1 ends at byte 52248576, past the end of the 2097152-byte disk/,
    );
  });

  it('finds no table on a bare file system or an empty image', async () => {
    expect(await readPartitionTable(memoryDisk(Buffer.alloc(100 * SECTOR)))).toEqual({
      scheme: 'none',
      partitions: [],
      warnings: [],
    });
    expect((await readPartitionTable(memoryDisk(Buffer.alloc(10)))).scheme).toBe('none');
  });

  it('answers any damage to a GPT with a table or SOURCE_UNREADABLE, within its bounds', async () => {
    // Small, so that random flips hit the headers and entries often.
    const image = gptImage(6_000, [
      { ...PARTS[0]!, first: 1024, last: 3071 },
      { ...PARTS[1]!, first: 3072, last: 5119 },
    ]);
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.tuple(fc.integer({ min: 0, max: 34 * SECTOR - 1 }), fc.integer({ min: 0, max: 255 })),
          {
            minLength: 1,
            maxLength: 8,
          },
        ),
        async (flips) => {
          const damaged = Buffer.from(image);
          for (const [at, value] of flips) damaged[at] = value;
          let reads = 0;
          const disk = memoryDisk(damaged);
          const counting = {
            size: disk.size,
            read: (o: number, l: number) => (reads++, disk.read(o, l)),
          };
          try {
            const table = await readPartitionTable(counting);
            for (const p of table.partitions)
              expect(p.offset + p.size).toBeLessThanOrEqual(damaged.length);
          } catch (error) {
            expect(error).toBeInstanceOf(HoldfastError);
            expect((error as HoldfastError).code).toBe('SOURCE_UNREADABLE');
          }
          expect(reads).toBeLessThan(10);
        },
      ),
      { numRuns: 300, seed: 0x9a7 },
    );
  });
});
