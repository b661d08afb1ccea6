import { describe, expect, it } from 'vitest';
import type { FileExtent } from '../../engine/index.js';
import { unchangedBlocks } from './shared-blocks.js';

const K = 1024;
const extent = (offset: number, length: number, physical: number, ...flags: string[]) =>
  ({ offset, length, physical, flags }) as FileExtent;

describe('blocks shared by two clones', () => {
  it('are unchanged where both map the same device bytes or both are holes, changed elsewhere', () => {
    // Eight blocks of 4 KiB. Before: data in blocks 0-3 at device 100 KiB, 6-7 at 500 KiB.
    const before = [extent(0, 16 * K, 100 * K), extent(24 * K, 8 * K, 500 * K)];
    // After: block 1 was rewritten (moved to 900 KiB), block 4 gained data, the rest shared.
    const after = [
      extent(0, 4 * K, 100 * K, 'shared'),
      extent(4 * K, 4 * K, 900 * K),
      extent(8 * K, 8 * K, 108 * K, 'shared'),
      extent(16 * K, 4 * K, 700 * K),
      extent(24 * K, 8 * K, 500 * K, 'shared', 'last', 'eof'),
    ];
    expect(unchangedBlocks(before, after, 32 * K, 4 * K)).toEqual([
      true,
      false,
      true,
      true,
      false,
      true, // a hole in both
      true,
      true,
    ]);
  });

  it('proves nothing through unwritten, unplaced, compressed or overlapping extents', () => {
    const before = [extent(0, 8 * K, 100 * K)];
    for (const flag of ['unwritten', 'delalloc', 'unknown_loc', 'encoded', 'data_inline'])
      expect(unchangedBlocks(before, [extent(0, 8 * K, 100 * K, flag)], 8 * K, 4 * K)).toEqual([
        false,
        false,
      ]);
    const overlapping = [extent(0, 8 * K, 100 * K), extent(4 * K, 4 * K, 104 * K)];
    expect(unchangedBlocks(before, overlapping, 8 * K, 4 * K)).toEqual([false, false]);
  });

  it('judges a block by every byte of it, also where extents end mid-block', () => {
    const before = [extent(0, 6 * K, 100 * K), extent(6 * K, 2 * K, 300 * K)];
    const after = [extent(0, 6 * K, 100 * K), extent(6 * K, 2 * K, 301 * K)];
    expect(unchangedBlocks(before, after, 8 * K, 4 * K)).toEqual([true, false]);
    // A short last block.
    expect(
      unchangedBlocks([extent(0, 5 * K, 100 * K)], [extent(0, 5 * K, 100 * K)], 5 * K, 4 * K),
    ).toEqual([true, true]);
  });
});
