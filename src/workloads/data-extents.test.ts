import { describe, expect, it } from 'vitest';
import { blockRanges, clipRanges } from './data-extents.js';

describe('blockRanges and clipRanges', () => {
  it('widens data to whole blocks and lists the zero blocks between', () => {
    const extents = [
      { offset: 100, length: 10 },
      { offset: 1000, length: 1 },
      { offset: 3000, length: 200 },
    ];
    expect(blockRanges(3500, extents, 512)).toEqual([
      { offset: 0, length: 1024, data: true },
      { offset: 1024, length: 1536, data: false },
      { offset: 2560, length: 940, data: true },
    ]);
  });

  it('is one stretch to read when nothing is known, and nothing for an empty disk', () => {
    expect(blockRanges(10, undefined, 4)).toEqual([{ offset: 0, length: 10, data: true }]);
    expect(blockRanges(0, [], 4)).toEqual([]);
    expect(blockRanges(10, [], 4)).toEqual([{ offset: 0, length: 10, data: false }]);
  });

  it('clips ranges to a window, relative to its start', () => {
    const ranges = [
      { offset: 0, length: 100 },
      { offset: 150, length: 100 },
      { offset: 400, length: 10 },
    ];
    expect(clipRanges(ranges, { offset: 50, length: 200 })).toEqual([
      { offset: 0, length: 50 },
      { offset: 100, length: 100 },
    ]);
    expect(clipRanges(undefined, { offset: 0, length: 1 })).toBe(undefined);
  });
});
