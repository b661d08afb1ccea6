/**
 * Zero runs: stretches of a file that are all zero bytes, in whole {@link ZERO_BLOCK}s aligned
 * to the file's offsets, at least {@link MIN_ZERO_RUN} long. They are recorded as holes instead
 * of chunks (vault-format §3): a sparse disk image's empty space is then neither stored nor
 * written back as data, and a chunk never mixes data with a long zero stretch, which would
 * otherwise defeat both compression sampling and sparse restore.
 */

/** Granularity of zero runs: the page and file-system block size of the systems we run on. */
export const ZERO_BLOCK = 4096;
/** Shortest zero run recorded as a hole; shorter ones stay inside chunks (and compress away). */
export const MIN_ZERO_RUN = 64 * 1024;

const ZEROS = Buffer.alloc(MIN_ZERO_RUN);

/** What lies ahead of a position in a read window, as far as chunking must know. */
export type ZeroScan =
  /** A zero run at `at` of `length` bytes (it may go on past the window's end). */
  | { readonly kind: 'run'; readonly at: number; readonly length: number }
  /**
   * No zero run starts before `knownEnd`; beyond it the window ends before anything could be
   * decided (a short zero stretch that may grow, or a partial block), so a chunk may not be
   * cut past `knownEnd` until more is read.
   */
  | { readonly kind: 'data'; readonly knownEnd: number };

/**
 * Looks for the first zero run that starts in `[from, from + horizon)` of `window[from, end)`.
 * `base` is the file offset of `window[0]` (blocks are aligned to file offsets, so results
 * do not depend on how the file was read). `eof` says that `end` is the end of the file.
 * `continuing` says that a run reached `from` at the end of the previous window: zero blocks
 * right at `from` then continue it, however few they are.
 */
export function scanZeroRun(
  window: Buffer,
  from: number,
  end: number,
  base: number,
  eof: boolean,
  horizon: number,
  continuing = false,
): ZeroScan {
  const misalignment = (base + from) % ZERO_BLOCK;
  let p = misalignment === 0 ? from : from + ZERO_BLOCK - misalignment;
  const stopAt = from + horizon;
  let runStart = -1;
  const long = (at: number, to: number): boolean =>
    to - at >= MIN_ZERO_RUN || (continuing && at === from && to > at);
  while (p + ZERO_BLOCK <= end) {
    if (runStart < 0 && p >= stopAt) return { kind: 'data', knownEnd: end };
    if (runStart >= 0 && p + MIN_ZERO_RUN <= end && isZeroRange(window, p, MIN_ZERO_RUN)) {
      // Inside a run, whole 64 KiB steps: holes of a disk image are gigabytes long.
      p += MIN_ZERO_RUN;
      continue;
    }
    if (isZeroRange(window, p, ZERO_BLOCK)) {
      if (runStart < 0) runStart = p;
    } else {
      if (runStart >= 0 && long(runStart, p)) {
        return { kind: 'run', at: runStart, length: p - runStart };
      }
      runStart = -1;
    }
    p += ZERO_BLOCK;
  }
  if (runStart >= 0) {
    if (long(runStart, p)) return { kind: 'run', at: runStart, length: p - runStart };
    return { kind: 'data', knownEnd: eof ? end : runStart };
  }
  // A trailing partial block could begin a run once more is read.
  return { kind: 'data', knownEnd: eof ? end : Math.min(p, end) };
}

/** True when `window[at, at + length)` is all zero bytes; `length` at most {@link MIN_ZERO_RUN}. */
export function isZeroRange(window: Buffer, at: number, length: number): boolean {
  // First and last byte first: nearly every data block fails there, without a compare call.
  if (window[at] !== 0 || window[at + length - 1] !== 0) return false;
  return ZEROS.compare(window, at, at + length, 0, length) === 0;
}
