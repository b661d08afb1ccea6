import { execFile } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
/** A stretch of a file. */
export interface ByteRange {
  readonly offset: number;
  readonly length: number;
}

const run = promisify(execFile);

/**
 * Where `filefrag` (e2fsprogs, installed on every Debian system) may live: /usr/sbin is not on
 * every user's PATH.
 */
const FILEFRAG = ['filefrag', '/usr/sbin/filefrag', '/sbin/filefrag'];

/**
 * The ranges of a regular file that may hold data, in increasing order and merged, from the
 * file system's extent map (FIEMAP, through `filefrag`). Everything outside them is a hole and
 * reads as zeros, so a reader of a sparse disk image need not read it (docs/disks.md "Holes", docs/vault-format.md §3).
 *
 * Undefined whenever the answer is not certain, and the caller then reads everything: the file
 * is not sparse (nothing to skip), or has fewer than `minUnallocated` bytes unallocated, it is not a regular file, the file system has no extent map
 * (tmpfs), filefrag is missing or prints anything unexpected. The file is synced first
 * (`filefrag -s`), so data still in the page cache is in the map; extents that are allocated
 * but unwritten, or not yet placed (delayed allocation), count as data.
 */
export async function fileDataExtents(
  path: string,
  expected?: FileIdentity,
  minUnallocated = 1,
): Promise<ByteRange[] | undefined> {
  const stats = await stat(path).catch(() => undefined);
  if (!stats?.isFile() || !sameFile(stats, expected)) return undefined;
  // Fewer bytes unallocated than the caller needs skipped (none, for a file with as many blocks
  // as its length needs): no holes worth starting filefrag for.
  if (stats.size - stats.blocks * 512 < minUnallocated) return undefined;
  const extents = await extentsOf(path, stats.size, expected);
  return extents && mergeRanges(extents);
}

/** Which file a caller has open: the map must be of that very file. */
export interface FileIdentity {
  readonly dev: number;
  readonly ino: number;
}

/** One extent of a file: where its bytes lie on the device, and what the file system says of it. */
export interface FileExtent extends ByteRange {
  /** Offset on the device (for btrfs, in its own address space); 0 when not placed yet. */
  readonly physical: number;
  /** FIEMAP flags as filefrag names them: `shared`, `unwritten`, `delalloc`, `encoded`… */
  readonly flags: readonly string[];
}

/**
 * Every extent of a regular file, in order, from FIEMAP (`filefrag -s -e`, the file synced
 * first); undefined whenever the answer is not certain (see {@link fileDataExtents}). With
 * `expected`, also undefined unless the path names that very file (device and inode) before
 * and after the map is read: filefrag is handed a path, and a file renamed into its place
 * meanwhile would otherwise lend its holes to the file the caller has open.
 */
export async function fileExtents(
  path: string,
  expected?: FileIdentity,
): Promise<FileExtent[] | undefined> {
  const stats = await stat(path).catch(() => undefined);
  if (!stats?.isFile() || !sameFile(stats, expected)) return undefined;
  return extentsOf(path, stats.size, expected);
}

/** The extent map of `path` (a regular file of `size` bytes, already checked), still that file after. */
async function extentsOf(
  path: string,
  size: number,
  expected: FileIdentity | undefined,
): Promise<FileExtent[] | undefined> {
  const extents = await readExtents(path, size);
  return extents !== undefined && sameFile(await stat(path).catch(() => undefined), expected)
    ? extents
    : undefined;
}

/** The stats are of the file `expected` names (any file when nothing is expected). */
function sameFile(
  stats: { dev: number; ino: number } | undefined,
  expected: FileIdentity | undefined,
): boolean {
  return expected === undefined || (stats?.dev === expected.dev && stats.ino === expected.ino);
}

async function readExtents(path: string, size: number): Promise<FileExtent[] | undefined> {
  for (const command of FILEFRAG) {
    const output = await run(command, ['-s', '-e', resolve(path)], { maxBuffer: 256 << 20 }).then(
      (r) => r.stdout,
      (error: NodeJS.ErrnoException) => (error.code === 'ENOENT' ? 'missing' : undefined),
    );
    if (output === 'missing') continue;
    return output === undefined ? undefined : parseFilefragExtents(output, size);
  }
  return undefined;
}

/** The data ranges of `filefrag -e` output, merged. Exported for tests. */
export function parseFilefrag(output: string, size: number): ByteRange[] | undefined {
  const extents = parseFilefragExtents(output, size);
  return extents && mergeRanges(extents);
}

/**
 * Parses `filefrag -e` output: a header naming the block size, then one row per extent —
 * logical range `start.. end:` and physical range in blocks (both ends included), length, an
 * optional expected block, flags. Undefined unless every part is as expected.
 */
function parseFilefragExtents(output: string, size: number): FileExtent[] | undefined {
  // FIBMAP, the fallback without FIEMAP, cannot see unwritten or delayed extents: not trusted.
  if (/FIBMAP/i.test(output)) return undefined;
  const header = /\((\d+) blocks? of (\d+) bytes\)/.exec(output);
  const found = /: (\d+) extents? found\s*$/.exec(output);
  if (!header || !found) return undefined;
  const blockSize = Number(header[2]);
  if (!(blockSize > 0)) return undefined;
  const lines = output.split('\n');
  const tableAt = lines.findIndex((l) => /^\s*ext:\s+logical_offset:/.test(l));
  if (tableAt < 0) return Number(found[1]) === 0 ? [] : undefined;
  const extents: FileExtent[] = [];
  for (const line of lines.slice(tableAt + 1)) {
    if (/ extents? found\s*$/.test(line)) break;
    const row =
      /^\s*\d+:\s+(\d+)\.\.\s*(\d+):\s+(\d+)\.\.\s*(\d+):\s+\d+:\s*(?:\d+:)?\s*([a-z_,]*)\s*$/.exec(
        line,
      );
    if (!row) return undefined;
    const offset = Number(row[1]) * blockSize;
    const end = Math.min(size, (Number(row[2]) + 1) * blockSize);
    const flags = row[5] ? row[5].split(',') : [];
    if (end > offset)
      extents.push({ offset, length: end - offset, physical: Number(row[3]) * blockSize, flags });
  }
  return extents;
}

/** Appends `[offset, offset + length)` to sorted ranges, extending the last one when they touch. */
export function appendRange(ranges: ByteRange[], offset: number, length: number): void {
  const last = ranges[ranges.length - 1];
  if (last && last.offset + last.length === offset)
    ranges[ranges.length - 1] = { offset: last.offset, length: last.length + length };
  else ranges.push({ offset, length });
}

/** Sorts ranges and merges those that touch or overlap. */
export function mergeRanges(ranges: readonly ByteRange[]): ByteRange[] {
  const sorted = [...ranges].sort((a, b) => a.offset - b.offset);
  const merged: ByteRange[] = [];
  for (const r of sorted) {
    const last = merged[merged.length - 1];
    if (last && r.offset <= last.offset + last.length) {
      const end = Math.max(last.offset + last.length, r.offset + r.length);
      merged[merged.length - 1] = { offset: last.offset, length: end - last.offset };
    } else merged.push({ offset: r.offset, length: r.length });
  }
  return merged;
}
