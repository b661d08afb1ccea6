import { describe, expect, it } from 'vitest';
import { isWholeBuffer, releaseBuffer } from './release-buffer.js';

describe('releaseBuffer', () => {
  it('empties a large buffer of its own at once', () => {
    const bytes = Buffer.allocUnsafeSlow(1024 * 1024).fill(1);
    releaseBuffer(bytes);
    expect(bytes.buffer.byteLength).toBe(0);
  });

  it('leaves slices of larger buffers, pool buffers and small buffers alone', () => {
    const parent = Buffer.alloc(1024 * 1024, 2);
    const slice = parent.subarray(0, 512 * 1024);
    const pooled = Buffer.from('pooled');
    const small = Buffer.allocUnsafeSlow(100).fill(3);
    for (const b of [slice, pooled, small]) releaseBuffer(b);
    expect(isWholeBuffer(slice) || isWholeBuffer(pooled)).toBe(false);
    expect(parent.byteLength).toBe(1024 * 1024);
    expect(slice[0]).toBe(2);
    expect(pooled.toString()).toBe('pooled');
    expect(small[99]).toBe(3);
  });
});
