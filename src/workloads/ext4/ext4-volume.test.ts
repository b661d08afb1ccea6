import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HoldfastError } from '../../core/index.js';
import { expectFailure } from '../../core/failure.testkit.js';
import { openDisk } from '../disk-reader.js';
import { openExt4, type Ext4Volume } from './ext4-volume.js';
import {
  countingDisk,
  debugfs,
  expectSameTree,
  indexDirectories,
  LARGE_SIZE,
  makeImage,
  NON_UTF8_NAME,
  populateSource,
  SPARSE_PIECES,
  SPARSE_SIZE,
} from './ext4.testkit.js';

const EXTENTS_FLAG = 0x80000;
const INDEX_FLAG = 0x1000;
const INLINE_FLAG = 0x10000000;
let dir: string;
/** The full tree, with a directory of 3000 entries. */
let full: string;
/** The same without the big directory, for the many variants. */
let small: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'holdfast-ext4-'));
  full = join(dir, 'full');
  small = join(dir, 'small');
  populateSource(full);
  populateSource(small, 0);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function withImage<T>(
  args: readonly string[],
  source: string,
  use: (volume: Ext4Volume, image: string) => Promise<T>,
  size = '16M',
): Promise<T> {
  const image = join(dir, `image-${args.join('')}.img`);
  makeImage(image, source, args, size);
  const disk = await openDisk(image);
  try {
    return await use(await openExt4(disk), image);
  } finally {
    await disk.close();
    rmSync(image, { force: true });
  }
}

describe('openExt4 on real file systems', () => {
  it('reads ext4 with 4 KiB blocks and an htree directory of 3000 entries, byte for byte', async () => {
    const image = join(dir, 'htree.img');
    makeImage(image, full, ['-t', 'ext4', '-b', '4096']);
    indexDirectories(image);
    const disk = await openDisk(image);
    try {
      const volume = await openExt4(disk);
      expect(volume.blockSize).toBe(4096);
      expect(volume.features).toEqual(expect.arrayContaining(['extents', 'dir_index', '64bit']));
      const big = await volume.stat('/big');
      expect((await volume.inode(big.inode)).flags & INDEX_FLAG).toBe(INDEX_FLAG);
      expect(await expectSameTree(volume, full)).toBeGreaterThan(3000);
    } finally {
      await disk.close();
    }
  });

  it('lists a big directory and reads a big file in few disk reads (blocks are cached)', async () => {
    const image = join(dir, 'htree.img');
    const disk = countingDisk(readFileSync(image));
    const volume = await openExt4(disk);
    const before = disk.reads;
    expect(await volume.list('/big')).toHaveLength(3000);
    // 3000 inodes of 256 bytes are 12 chunks of the inode table, plus the directory's blocks.
    expect(disk.reads - before).toBeLessThan(40);
    const middle = disk.reads;
    const large = await volume.readFile('/a/large.bin', 0, LARGE_SIZE);
    expect(large.length).toBe(LARGE_SIZE);
    expect(disk.reads - middle).toBeLessThan(12);
  });

  it('reads an extent tree with index nodes (a file in many pieces across small groups)', async () => {
    await withImage(
      ['-t', 'ext4', '-b', '1024', '-O', '^flex_bg', '-g', '256'],
      small,
      async (volume, image) => {
        // debugfs shows an extent tree block ("ETB") when the root is an index.
        expect(debugfs(image, 'stat /a/large.bin')).toMatch(/\(ETB0\)/);
        expect(await expectSameTree(volume, small)).toBeGreaterThan(10);
      },
    );
  });

  const variants: Array<[string, string[], string?]> = [
    ['ext4, 1 KiB blocks', ['-t', 'ext4']],
    ['ext3 (indirect blocks, 1 KiB: double indirect for 5 MiB)', ['-t', 'ext3']],
    ['ext2 with 4 KiB blocks', ['-t', 'ext2', '-b', '4096']],
    ['ext2 revision 0 (no file types in directories, 128-byte inodes)', ['-t', 'ext2', '-r', '0']],
    ['ext4 without extents (block maps)', ['-t', 'ext4', '-O', '^extents,^64bit']],
    ['ext4 with inline data', ['-t', 'ext4', '-O', 'inline_data']],
    ['ext4 with 128-byte inodes', ['-t', 'ext4', '-I', '128']],
    [
      'ext4 with meta_bg',
      ['-t', 'ext4', '-b', '1024', '-g', '1024', '-O', 'meta_bg,^resize_inode'],
    ],
    ['ext4 with bigalloc', ['-t', 'ext4', '-O', 'bigalloc', '-C', '16384'], '64M'],
    ['ext4 with 64 KiB blocks', ['-t', 'ext4', '-b', '65536'], '64M'],
  ];
  for (const [name, args, size] of variants)
    it(`reads ${name}, byte for byte`, async () => {
      await withImage(
        args,
        small,
        async (volume) => {
          expect(await expectSameTree(volume, small)).toBeGreaterThan(10);
          const large = await volume.inode((await volume.stat('/a/large.bin')).inode);
          const extents = args.includes('ext4') && !args.includes('^extents,^64bit');
          expect(large.flags & EXTENTS_FLAG).toBe(extents ? EXTENTS_FLAG : 0);
          if (args.includes('inline_data')) {
            const tiny = await volume.inode((await volume.stat('/small.txt')).inode);
            expect(tiny.flags & INLINE_FLAG).toBe(INLINE_FLAG);
          }
        },
        size,
      );
    });

  it('reads a sparse file through a triple indirect block (ext2, 1 KiB blocks)', async () => {
    const source = join(dir, 'far');
    mkdirSync(source);
    // 12 + 256 + 256² blocks are reachable without the triple indirect block: 64.3 MiB.
    const far = 70 * 1024 * 1024;
    const content = Buffer.alloc(far + 5000);
    content.write('near', 10);
    content.write('far away', far + 1000);
    writeFileSync(join(source, 'far'), content);
    await withImage(['-t', 'ext2', '-b', '1024'], source, async (volume) => {
      expect(await volume.readFile('/far', far + 996, 16)).toEqual(
        Buffer.concat([Buffer.alloc(4), Buffer.from('far away'), Buffer.alloc(4)]),
      );
      expect((await volume.readFile('/far', 0, 20)).toString('latin1')).toBe(
        '\0'.repeat(10) + 'near' + '\0'.repeat(6),
      );
    });
  });
});

describe('Ext4Volume', () => {
  it('answers stat, list, readFile and readlink by text and byte paths', async () => {
    await withImage(
      ['-t', 'ext4', '-L', 'holdfast', '-U', '0a0b0c0d-0e0f-4000-8000-000000000001'],
      small,
      async (volume) => {
        expect(volume.label).toBe('holdfast');
        expect(volume.uuid).toBe('0a0b0c0d-0e0f-4000-8000-000000000001');
        expect(volume.warnings).toEqual([]);
        const root = await volume.stat('/');
        expect(root).toMatchObject({ type: 'dir', inode: 2, name: Buffer.alloc(0) });
        const odd = await volume.stat(Buffer.concat([Buffer.from('/'), NON_UTF8_NAME]));
        expect(odd).toMatchObject({ type: 'file', displayName: 'f\\xffo', size: 6 });
        expect((await volume.list('/')).map((e) => e.displayName)).toContain('f\\xffo');
        expect(await volume.readlink('/link')).toEqual(Buffer.from('a/large.bin'));
        expect((await volume.stat('a/./b/../b/c/deep.txt')).size).toBe(12);
        expect(await volume.stat('/fifo')).toMatchObject({ type: 'fifo' });
        const sparse = await volume.stat('/sparse');
        expect(sparse.size).toBe(SPARSE_SIZE);
        const [, middle] = SPARSE_PIECES;
        expect((await volume.readFile('/sparse', middle!.at - 3, 8)).toString('latin1')).toBe(
          '\0\0\0hello',
        );
        expect((await volume.readFile('/sparse', SPARSE_SIZE - 2, 100)).toString()).toBe('d.');
        expect(await volume.readFile('/sparse', SPARSE_SIZE + 5, 10)).toEqual(Buffer.alloc(0));
        expect(await volume.readFile(sparse.inode, 2 * 1024 * 1024, 4)).toEqual(Buffer.alloc(4));
      },
    );
  });

  it('refuses what is not there or not asked right, with the right codes', async () => {
    await withImage(['-t', 'ext4'], small, async (volume) => {
      const code = async (promise: Promise<unknown>) => (await expectFailure(promise)).code;
      expect(await code(volume.stat('/nothing'))).toBe('RESOURCE_NOT_FOUND');
      expect(await code(volume.stat('/small.txt/x'))).toBe('RESOURCE_NOT_FOUND');
      // Symlinks along a path are not followed.
      expect(await code(volume.stat('/link/x'))).toBe('RESOURCE_NOT_FOUND');
      expect(await code(volume.list('/small.txt'))).toBe('RESOURCE_NOT_FOUND');
      expect(await code(volume.readFile('/a', 0, 1))).toBe('USAGE_INVALID');
      expect(await code(volume.readFile('/small.txt', 0, 2 ** 30))).toBe('USAGE_INVALID');
      expect(await code(volume.readFile('/small.txt', -1, 1))).toBe('USAGE_INVALID');
      expect(await code(volume.readlink('/small.txt'))).toBe('USAGE_INVALID');
      expect(await code(volume.stat(`/${'n'.repeat(256)}`))).toBe('USAGE_INVALID');
      expect(await code(volume.stat('/x'.repeat(2049)))).toBe('USAGE_INVALID');
      expect(await code(volume.inode(1_000_000))).toBe('SOURCE_UNREADABLE');
    });
  });

  it('reads nanoseconds and dates past 2038 from the extra time field', async () => {
    const image = join(dir, 'times.img');
    makeImage(image, small, ['-t', 'ext4']);
    // Epoch bits 1 (seconds + 2³²) and 123456789 ns, as the kernel writes them.
    debugfs(image, 'sif /empty mtime 0x10', true);
    debugfs(image, `sif /empty mtime_extra ${123456789 * 4 + 1}`, true);
    const volume = await openExt4(countingDisk(readFileSync(image)));
    const entry = await volume.stat('/empty');
    expect(entry.mtimeNs).toBe((2n ** 32n + 16n) * 1_000_000_000n + 123456789n);
    expect(entry.mtime).toBe((2 ** 32 + 16) * 1000 + 123);
    // Before 1970: signed seconds, milliseconds rounded down.
    expect((await volume.stat('/small.txt')).mtime).toBe(-86_400 * 365 * 1000);
  });

  it('opens a file system inside a partition at its offset, and not at a wrong one', async () => {
    const image = join(dir, 'offset.img');
    const offset = 1024 * 1024;
    writeFileSync(image, Buffer.alloc(offset + 12 * 1024 * 1024));
    makeImage(image, small, ['-t', 'ext4', '-E', `offset=${offset}`], '12M');
    const disk = await openDisk(image);
    try {
      const volume = await openExt4(disk, offset);
      expect((await volume.readFile('/small.txt', 0, 100)).toString()).toBe('small file\n');
      const error = await expectFailure(openExt4(disk, 0));
      expect(error.code).toBe('SOURCE_UNREADABLE');
      expect(error.message).toMatch(/magic 0xEF53/);
      expect(await expectFailure(openExt4(disk, disk.size - 100))).toBeInstanceOf(HoldfastError);
    } finally {
      await disk.close();
    }
  });
});
