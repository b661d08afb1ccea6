import { readFile, rename, rm, stat, writeFile } from 'node:fs/promises';

/**
 * What identifies an image file's content without reading it: device, inode, size and change
 * times, and when they were seen. Block devices have none (their times say nothing of writes).
 */
export interface SourceIdentity {
  readonly dev: string;
  readonly ino: string;
  readonly size: string;
  readonly mtimeNs: string;
  readonly ctimeNs: string;
  /** Wall-clock time of the stat, in nanoseconds. */
  readonly seenNs: string;
  /**
   * The mirror layout the identity was recorded with: {@link MIRROR_LAYOUT}. Mirrors of other
   * layouts (before mirrors held the guest's raw view of qcow2 sources) are never trusted.
   */
  readonly layout: number;
}

/** Mirrors hold the guest's bytes, raw, for every source format. */
const MIRROR_LAYOUT = 2;

/**
 * A file changed within this long before it was looked at may change again within the same
 * timestamp tick without its times moving: such a file is never trusted unread (the rule git
 * and restic use for "racily clean" files).
 */
const RACY_NS = 2_000_000_000n;

/** The identity of an image file now, or undefined for anything but a regular file. */
export async function identityOf(path: string): Promise<SourceIdentity | undefined> {
  const seenNs = BigInt(Date.now()) * 1_000_000n;
  const s = await stat(path, { bigint: true });
  if (!s.isFile()) return undefined;
  return {
    dev: String(s.dev),
    ino: String(s.ino),
    size: String(s.size),
    mtimeNs: String(s.mtimeNs),
    ctimeNs: String(s.ctimeNs),
    seenNs: String(seenNs),
    layout: MIRROR_LAYOUT,
  };
}

function identityPath(mirror: string): string {
  return `${mirror}.identity`;
}

/**
 * True when the source is the very file, unchanged, that the mirror's last completed refresh
 * copied: same identity, and its last change was well before that refresh looked at it.
 */
export async function unchangedSinceRefresh(now: SourceIdentity, mirror: string): Promise<boolean> {
  let before: SourceIdentity;
  try {
    before = JSON.parse(await readFile(identityPath(mirror), 'utf8')) as SourceIdentity;
  } catch {
    return false;
  }
  const same =
    before.layout === MIRROR_LAYOUT &&
    before.dev === now.dev &&
    before.ino === now.ino &&
    before.size === now.size &&
    before.mtimeNs === now.mtimeNs &&
    before.ctimeNs === now.ctimeNs;
  if (!same) return false;
  const lastChange = [BigInt(before.mtimeNs), BigInt(before.ctimeNs)].reduce((a, b) =>
    a > b ? a : b,
  );
  return lastChange < BigInt(before.seenNs) - RACY_NS;
}

/** Forgets the identity while a refresh runs: an interrupted refresh must not be trusted. */
export async function forgetIdentity(mirror: string): Promise<void> {
  await rm(identityPath(mirror), { force: true });
}

/** Records the identity the source had when a refresh that has now completed began. */
export async function recordIdentity(mirror: string, identity: SourceIdentity): Promise<void> {
  await writeFile(`${identityPath(mirror)}.tmp`, JSON.stringify(identity));
  await rename(`${identityPath(mirror)}.tmp`, identityPath(mirror));
}
