import { unreadable } from './damage.js';

/**
 * Incompatible features: a reader that does not understand one of these would misread the file
 * system, so each one is either read here or refused at open.
 */
export const INCOMPAT = {
  compression: 0x1,
  filetype: 0x2,
  recover: 0x4,
  journal_dev: 0x8,
  meta_bg: 0x10,
  extents: 0x40,
  '64bit': 0x80,
  mmp: 0x100,
  flex_bg: 0x200,
  ea_inode: 0x400,
  dirdata: 0x1000,
  csum_seed: 0x2000,
  largedir: 0x4000,
  inline_data: 0x8000,
  encrypt: 0x10000,
  casefold: 0x20000,
} as const;

/** Read-only-compatible features: they matter to writers; a reader may ignore unknown ones. */
export const RO_COMPAT = {
  sparse_super: 0x1,
  large_file: 0x2,
  huge_file: 0x8,
  gdt_csum: 0x10,
  dir_nlink: 0x20,
  extra_isize: 0x40,
  quota: 0x100,
  bigalloc: 0x200,
  metadata_csum: 0x400,
  readonly: 0x1000,
  project: 0x2000,
  shared_blocks: 0x4000,
  verity: 0x8000,
  orphan_present: 0x10000,
} as const;

/** Compatible features: safe to ignore when reading. */
export const COMPAT = {
  dir_prealloc: 0x1,
  imagic_inodes: 0x2,
  has_journal: 0x4,
  ext_attr: 0x8,
  resize_inode: 0x10,
  dir_index: 0x20,
  sparse_super2: 0x200,
  fast_commit: 0x400,
  stable_inodes: 0x800,
  orphan_file: 0x1000,
} as const;

/** Why each refused incompatible feature cannot be read. */
const REFUSED: Readonly<Partial<Record<keyof typeof INCOMPAT, string>>> = {
  compression: 'its files may be compressed, which this reader does not undo',
  journal_dev: 'it is an external journal device, not a file system',
  dirdata: 'its directory entries carry extra data (Lustre), which this reader does not parse',
  encrypt: 'it holds encrypted directories and files, which cannot be read without their keys',
};

/** The feature flags of a file system, as read from its superblock. */
export interface FeatureFlags {
  readonly compat: number;
  readonly incompat: number;
  readonly roCompat: number;
}

/**
 * Throws SOURCE_UNREADABLE when the file system uses an incompatible feature this reader refuses
 * or does not know: reading on would return wrong bytes rather than fail.
 */
export function checkReadable(flags: FeatureFlags): void {
  const problems: string[] = [];
  let known = 0;
  for (const [name, bit] of Object.entries(INCOMPAT)) {
    known |= bit;
    const why = REFUSED[name as keyof typeof INCOMPAT];
    if (why !== undefined && (flags.incompat & bit) !== 0) problems.push(`"${name}" (${why})`);
  }
  const unknown = flags.incompat & ~known;
  if (unknown !== 0)
    problems.push(`unknown incompatible features 0x${(unknown >>> 0).toString(16)}`);
  if (problems.length > 0)
    throw unreadable(
      `it uses ${problems.join(' and ')}; nothing was read. Mount it with the kernel instead`,
    );
}

/** The names of the features set in `flags`, for display (`64bit`, `extents`, …). */
export function featureNames(flags: FeatureFlags): string[] {
  const names: string[] = [];
  const add = (table: Readonly<Record<string, number>>, value: number) => {
    for (const [name, bit] of Object.entries(table)) if ((value & bit) !== 0) names.push(name);
  };
  add(COMPAT, flags.compat);
  add(INCOMPAT, flags.incompat);
  add(RO_COMPAT, flags.roCompat);
  return names;
}
