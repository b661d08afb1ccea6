import { describe, expect, it } from 'vitest';
import { HoldfastError } from '../../core/index.js';
import { parseDirectoryBlock } from './directory.js';
import { displayName, pathComponents } from './paths.js';

describe('pathComponents', () => {
  it('drops empty names and ".", and goes up lexically for ".."', () => {
    const names = (path: string | Buffer) => pathComponents(path).map((n) => n.toString('latin1'));
    expect(names('/')).toEqual([]);
    expect(names('')).toEqual([]);
    expect(names('//a/./b//c/')).toEqual(['a', 'b', 'c']);
    expect(names('/a/b/../../../c')).toEqual(['c']);
    expect(names(Buffer.from([0x2f, 0x66, 0xff]))).toEqual(['f\xff']);
  });

  it('refuses NUL bytes, names over 255 bytes and paths over 4096 bytes', () => {
    for (const path of ['/a\0b', `/${'x'.repeat(256)}`, `/${'a/'.repeat(2048)}`])
      expect(() => pathComponents(path)).toThrow(HoldfastError);
    expect(pathComponents(`/${'x'.repeat(255)}`)).toHaveLength(1);
  });
});

describe('displayName', () => {
  it('shows UTF-8 as is and escapes the rest so that no escape looks like a real name', () => {
    expect(displayName(Buffer.from('été ☃'))).toBe('été ☃');
    expect(displayName(Buffer.from([0x66, 0xff, 0x6f]))).toBe('f\\xffo');
    expect(displayName(Buffer.from([0x5c, 0xff]))).toBe('\\\\\\xff');
    expect(displayName(Buffer.from('a\nb\\'))).toBe('a\\x0ab\\\\');
    expect(displayName(Buffer.from('plain\\name'))).toBe('plain\\name');
  });
});

describe('parseDirectoryBlock', () => {
  function record(inode: number, length: number, name: string, type = 1): Buffer {
    const bytes = Buffer.alloc(length);
    bytes.writeUInt32LE(inode, 0);
    bytes.writeUInt16LE(length & 0xffff, 4);
    bytes[6] = name.length;
    bytes[7] = type;
    bytes.write(name, 8, 'latin1');
    return bytes;
  }
  const options = { fileType: true, blockSize: 1024 };
  const where = () => 'test block';

  it('reads used records and skips unused ones', () => {
    const block = Buffer.concat([
      record(12, 16, 'first'),
      record(0, 12, 'x'),
      record(13, 996, 'z'),
    ]);
    expect(parseDirectoryBlock(block, options, where)).toEqual([
      { inode: 12, name: Buffer.from('first') },
      { inode: 13, name: Buffer.from('z') },
    ]);
  });

  it('refuses lengths that are zero, unaligned, too short for the name or past the block', () => {
    const bad = [
      record(12, 1024, 'a').fill(0, 4, 6),
      Buffer.concat([record(12, 14, 'a'), Buffer.alloc(1010)]),
      Buffer.concat([record(12, 12, 'long-name'), Buffer.alloc(1012)]),
      Buffer.concat([record(12, 1000, 'a'), record(13, 24, 'b')]).fill(28, 1004, 1005),
      Buffer.concat([record(12, 1020, 'a'), Buffer.alloc(4)]),
    ];
    for (const block of bad)
      expect(() => parseDirectoryBlock(block, options, where)).toThrow(/test block/);
  });

  it('reads the 17-bit record lengths of 64 KiB blocks', () => {
    const block = record(12, 65536, 'only');
    block.writeUInt16LE(0xffff, 4);
    const big = { fileType: true, blockSize: 65536 };
    expect(parseDirectoryBlock(block, big, where)).toEqual([
      { inode: 12, name: Buffer.from('only') },
    ]);
    // 0x10004 bytes would need bit 16, carried in the low bits: 0x0001 | 0x0004 → 65540 > block.
    block.writeUInt16LE(0x0005, 4);
    expect(() => parseDirectoryBlock(block, big, where)).toThrow(/invalid length 65540/);
  });

  it('reads 16-bit name lengths without the filetype feature', () => {
    const block = record(12, 1024, 'abc', 0);
    expect(parseDirectoryBlock(block, { fileType: false, blockSize: 1024 }, where)).toEqual([
      { inode: 12, name: Buffer.from('abc') },
    ]);
    block[7] = 1; // high byte of the name length: 259 bytes, over the limit
    expect(() => parseDirectoryBlock(block, { fileType: false, blockSize: 1024 }, where)).toThrow(
      /overruns/,
    );
  });
});
