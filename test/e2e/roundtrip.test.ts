/**
 * Round trip of a hostile-to-tools tree through the real CLI: backup, restore, compare entry by
 * entry; then browsing commands, an unchanged second backup, and interrupted restores.
 */
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  ftruncateSync,
  lchownSync,
  linkSync,
  lutimesSync,
  mkdirSync,
  openSync,
  renameSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  startStore,
  STORE_KINDS,
  type TestStore,
} from '../../src/backends/object-stores.testkit.js';
import {
  assertRoot,
  killStartedProcesses,
  prng,
  randomInt,
  restoredPath,
  Sandbox,
  seededBytes,
  sleep,
  writeSeededFile,
  type BackupSummary,
  type PointRow,
  type RestoreSummary,
} from './cli.testkit.js';
import {
  allocatedBytes,
  diffTrees,
  filePaths,
  sameFileContent,
  snapshotTree,
  type TreeSnapshot,
} from './tree.testkit.js';

const SEED = 0x5eed_0001;
const GiB = 1024 * 1024 * 1024;
const MiB = 1024 * 1024;
/** The sparse file and where its data is. */
const SPARSE_SIZE = 2 * GiB;
const SPARSE_DATA = [
  { offset: 0, size: 1 * MiB },
  { offset: 777 * MiB + 12_345, size: 2 * MiB },
  { offset: SPARSE_SIZE - 1 * MiB, size: 1 * MiB },
];
const BULK_DIRS = 100;
const BULK_FILES = 1000;
const DEEP_LEVELS = 120;

/** Raw-byte names that are not valid UTF-8. */
const BAD_UTF8 = Buffer.from([0x66, 0xff, 0xfe]);
const BAD_UTF8_DIR = Buffer.from([0xc3, 0x28]);

function bpath(dir: string, name: Buffer): Buffer {
  return Buffer.concat([Buffer.from(dir + '/'), name]);
}

/** Builds the tree the round trip is about: every odd thing a file system holds, and many files. */
function buildNastyTree(src: string): void {
  mkdirSync(src, { recursive: true });
  // Hard links sort before the bulk files, so an interrupted restore has finished them.
  buildHardLinks(src);
  buildBulk(join(src, 'bulk'));
  buildPlainOddities(src);
  buildNames(join(src, 'names'));
  buildSymlinks(join(src, 'links'), src);
  buildOwnersAndTimes(src);
  // Modes last: the read-only directory must already hold its file.
  buildModes(join(src, 'modes'));
}

function buildHardLinks(src: string): void {
  const p = (...parts: string[]): string => join(src, ...parts);
  mkdirSync(p('a-hard'));
  mkdirSync(p('other-dir'));
  writeFileSync(p('a-hard', 'orig'), 'one inode, three names\n');
  linkSync(p('a-hard', 'orig'), p('a-hard', 'link2'));
  linkSync(p('a-hard', 'orig'), p('other-dir', 'link3'));
  writeFileSync(p('a-hard', 'pair-a'), seededBytes(70_000, 'pair'));
  linkSync(p('a-hard', 'pair-a'), p('a-hard', 'pair-b'));
}

/** 100 directories of 1000 files of a few bytes. */
function buildBulk(root: string): void {
  mkdirSync(root);
  for (let d = 0; d < BULK_DIRS; d += 1) {
    const dir = join(root, `d${String(d).padStart(3, '0')}`);
    mkdirSync(dir);
    for (let f = 0; f < BULK_FILES; f += 1) writeFileSync(`${dir}/f${f}`, `${d}:${f}\n`);
  }
}

/** Empty files and directories, deep nesting, a FIFO, duplicate content, the sparse file. */
function buildPlainOddities(src: string): void {
  const p = (...parts: string[]): string => join(src, ...parts);
  const deep = p('deep', ...Array.from({ length: DEEP_LEVELS }, (_, i) => `l${i}`));
  mkdirSync(deep, { recursive: true });
  writeFileSync(join(deep, 'bottom.txt'), 'at the bottom\n');
  writeFileSync(p('empty-file'), '');
  writeFileSync(p('zero-bytes'), Buffer.alloc(0));
  mkdirSync(p('empty-dir'));
  mkdirSync(p('empty-dir-2', 'nested-empty'), { recursive: true });
  writeSeededFile(p('big.bin'), 3 * MiB + 17, 'big');
  writeSeededFile(p('big-copy.bin'), 3 * MiB + 17, 'big');
  execFileSync('mkfifo', ['--', p('fifo')]);
  // 2 GiB, nearly all hole.
  const fd = openSync(p('sparse.img'), 'w');
  try {
    ftruncateSync(fd, SPARSE_SIZE);
    for (const [i, region] of SPARSE_DATA.entries()) {
      writeSync(fd, seededBytes(region.size, `sparse-${i}`), 0, region.size, region.offset);
    }
  } finally {
    closeSync(fd);
  }
}

function buildNames(dir: string): void {
  mkdirSync(dir);
  const names = [
    'new\nline',
    ' leading space',
    'trailing space ',
    '-rf',
    '--help',
    '-',
    'tab\tname',
    'back\\slash',
    `quote'"`,
    '*?[glob]',
    'ünïcödé 日本',
    'n'.repeat(255),
  ];
  for (const name of names) writeFileSync(join(dir, name), `name: ${name}\n`);
  writeFileSync(bpath(dir, BAD_UTF8), 'invalid utf-8 name\n');
  mkdirSync(bpath(dir, BAD_UTF8_DIR));
  writeFileSync(Buffer.concat([bpath(dir, BAD_UTF8_DIR), Buffer.from('/inside')]), 'x\n');
}

function buildSymlinks(dir: string, src: string): void {
  mkdirSync(dir);
  symlinkSync('../a-hard/orig', join(dir, 'rel'));
  symlinkSync(join(src, 'a-hard', 'orig'), join(dir, 'abs'));
  symlinkSync('does/not/exist', join(dir, 'dangling'));
  symlinkSync('../empty-dir', join(dir, 'to-dir'));
  symlinkSync('/etc', join(dir, 'to-dir-abs'));
  symlinkSync('loop', join(dir, 'loop'));
  symlinkSync('--help', join(dir, '-dash-link'));
  symlinkSync(Buffer.from([0x74, 0xff, 0x2f, 0x78]), join(dir, 'bad-target'));
}

function buildOwnersAndTimes(src: string): void {
  const p = (...parts: string[]): string => join(src, ...parts);
  mkdirSync(p('owner', 'dir'), { recursive: true });
  writeFileSync(p('owner', 'file'), 'owned by someone else\n');
  symlinkSync('file', p('owner', 'link'));
  chownSync(p('owner', 'file'), 1234, 5678);
  chownSync(p('owner', 'dir'), 4321, 8765);
  lchownSync(p('owner', 'link'), 1111, 2222);

  mkdirSync(p('times', 'old-dir'), { recursive: true });
  writeFileSync(p('times', 'old-dir', 'inner'), 'inner\n');
  writeFileSync(p('times', 'y2001'), 'old\n');
  writeFileSync(p('times', 'before-1970'), 'older than the epoch\n');
  writeFileSync(p('times', 'future'), 'from 2100\n');
  symlinkSync('y2001', p('times', 'old-link'));
  utimesSync(p('times', 'y2001'), 1_000_000_000, 1_000_000_000.5);
  utimesSync(p('times', 'before-1970'), -315_619_200, -315_619_200);
  utimesSync(p('times', 'future'), 4_102_444_800, 4_102_444_800);
  lutimesSync(p('times', 'old-link'), 1_200_000_000, 1_200_000_000);
  utimesSync(p('times', 'old-dir'), 700_000_000, 700_000_000);
}

function buildModes(dir: string): void {
  const p = (name: string): string => join(dir, name);
  mkdirSync(dir);
  writeFileSync(p('setuid'), '#!/bin/sh\n');
  writeFileSync(p('no-access'), 'secret\n');
  writeFileSync(p('group-write'), 'shared\n');
  // Created with its final mode (the umask takes none of its bits): still written in full.
  writeFileSync(p('read-only'), 'written before it became read-only\n');
  for (const name of ['sticky-dir', 'setgid-dir', 'read-only-dir']) mkdirSync(p(name));
  writeFileSync(join(p('read-only-dir'), 'inner'), 'inside a read-only directory\n');
  const modes: Array<[string, number]> = [
    ['setuid', 0o4755],
    ['no-access', 0o000],
    ['group-write', 0o664],
    ['read-only', 0o444],
    ['sticky-dir', 0o1777],
    ['setgid-dir', 0o2750],
    ['read-only-dir', 0o555],
  ];
  for (const [name, mode] of modes) chmodSync(p(name), mode);
}

/** Restores `ref` into `target` and returns the parsed summary; requires exit code `code`. */
async function restore(
  sb: Sandbox,
  ref: string,
  target: string,
  extra: string[] = [],
  code = 0,
): Promise<RestoreSummary> {
  return sb.json<RestoreSummary>(['restore', ref, '--target', target, ...extra], code);
}

/** Compares a restored copy of `src` under `target` with the source snapshot, sparse file included. */
async function expectSameTree(source: TreeSnapshot, src: string, target: string): Promise<void> {
  const out = restoredPath(target, src);
  const restored = snapshotTree(out);
  expect(diffTrees(source, restored), 'restored tree differs from the source').toEqual([]);
  expect(
    await sameFileContent(join(src, 'sparse.img'), join(out, 'sparse.img')),
    'cmp: restored sparse.img differs from the source',
  ).toBe(true);
}

// The whole round trip runs with the vault in a directory, in Azure Blob (Azurite) and in S3
// (s3rver): the vault format does not depend on where its objects are.
describe.each(STORE_KINDS)('round trip of a nasty tree (vault: %s)', (kind) => {
  let store: TestStore | undefined;
  let sb: Sandbox;
  let src: string;
  let source: TreeSnapshot;
  let first: BackupSummary;

  beforeAll(async () => {
    assertRoot('The round trip (ownership of restored files)');
    store = await startStore(kind, 'roundtrip');
    // 300 000 small files are created, restored twice and removed: in memory, not on disk.
    sb = await Sandbox.create(`roundtrip-${kind}`, { tmpfs: '4g', store });
    await sb.init();
    src = sb.path('src');
    buildNastyTree(src);
    source = snapshotTree(src);
    first = await sb.backup([src]);
  }, 900_000);

  afterAll(async () => {
    killStartedProcesses();
    await sb?.cleanup();
    await store?.stop();
  });

  it('backs up every entry without errors', () => {
    expect(first.errorList).toEqual([]);
    expect(first.errors).toBe(0);
    expect(first.files).toBe(filePaths(source).length);
    expect(first.dirs).toBe([...source.values()].filter((e) => e.type === 'dir').length);
    expect(first.filesRead).toBeGreaterThan(BULK_DIRS * BULK_FILES);
    expect(first.paths).toEqual([src]);
  });

  it('restores the tree identically, sparse and linked, and --verify agrees', async () => {
    const target = sb.path('out');
    const summary = await restore(sb, 'latest', target, ['--verify']);
    expect(summary.failures).toEqual([]);
    expect(summary.verified?.mismatches).toBe(0);
    await expectSameTree(source, src, target);
    const sparse = join(restoredPath(target, src), 'sparse.img');
    const data = SPARSE_DATA.reduce((n, r) => n + r.size, 0);
    // Chunks around the data regions may carry some zeros; the 2 GiB of hole must stay a hole.
    expect(allocatedBytes(sparse)).toBeLessThan(data + 64 * MiB);
  }, 600_000);

  it('lists the point and its entries', async () => {
    const points = await sb.points();
    expect(points.map((p: PointRow) => p.id)).toEqual([first.id]);
    expect(points[0]!.paths).toEqual([src]);
    expect(points[0]!.stats.files).toBe(first.files);

    const names = await sb.json<Array<{ path: string; type: string; target: string | null }>>([
      'ls',
      'latest',
      join(src, 'names'),
    ]);
    const expectedNames = [...source.keys()]
      .filter((rel) => /^names\/[^/]+$/.test(rel))
      .map((rel) => Buffer.from(rel.slice('names/'.length), 'latin1').toString('utf8'))
      .sort();
    expect(names.map((r) => r.path.slice(join(src, 'names').length + 1)).sort()).toEqual(
      expectedNames,
    );

    const links = await sb.json<Array<{ path: string; type: string; target: string | null }>>([
      'ls',
      'latest',
      join(src, 'links'),
    ]);
    expect(links.find((r) => r.path.endsWith('/dangling'))).toMatchObject({
      type: 'symlink',
      target: 'does/not/exist',
    });

    const deep = await sb.json<Array<{ path: string; type: string }>>([
      'ls',
      '--recursive',
      'latest',
      join(src, 'deep'),
    ]);
    expect(deep).toHaveLength(DEEP_LEVELS + 1);
    expect(deep.filter((r) => r.type === 'file').map((r) => r.path)).toEqual([
      join(src, 'deep', ...Array.from({ length: DEEP_LEVELS }, (_, i) => `l${i}`), 'bottom.txt'),
    ]);
  }, 300_000);

  it('reads no file again when nothing changed, and diff shows nothing', async () => {
    const second = await sb.backup([src]);
    expect(second.filesRead).toBe(0);
    expect(second.parent).toBe(first.id);
    expect(second.errors).toBe(0);
    // Only tree blobs can be new (the directories above the backed-up path); never file data.
    expect(second.newBytes).toBeLessThan(64 * 1024);
    const diff = await sb.json<{ changes: Array<{ path: string }> }>(['diff', first.id, second.id]);
    // The sandbox directories above the backed-up path did change (restores wrote into them).
    expect(diff.changes.filter((c) => c.path === src || c.path.startsWith(src + '/'))).toEqual([]);
  }, 300_000);

  it('finishes an interrupted restore with the same result', async () => {
    const target = sb.path('interrupted');
    // Restore plans entries in name order and creates directories as it plans them, in batches
    // of files: once bulk/dNNN exists, the files before it are written or being written. That
    // moment does not depend on how fast the machine is.
    const dir = `d${String(randomInt(prng(SEED), 25, 75)).padStart(3, '0')}`;
    const marker = join(restoredPath(target, src), 'bulk', dir);
    const started = sb.spawn(['restore', 'latest', '--target', target]);
    let done = false;
    void started.result.then(() => (done = true));
    while (!done && !existsSync(marker)) await sleep(2);
    const killed = !done && started.child.kill('SIGKILL');
    const interrupted = await started.result;
    expect(
      killed,
      `the restore ended (exit ${String(interrupted.code)}) before it reached bulk/${dir}, so it was never interrupted\n${interrupted.stderr}`,
    ).toBe(true);
    expect(interrupted.signal).toBe('SIGKILL');

    const resumed = await restore(sb, 'latest', target);
    expect(resumed.failures).toEqual([]);
    expect(resumed.skipped).toBeGreaterThan(0);
    await expectSameTree(source, src, target);
  }, 600_000);

  it('restores hard links as links when a restore is repeated over a partial target', async () => {
    const target = sb.path('out');
    const out = restoredPath(target, src);
    // As if a restore had stopped after the first name of each link group was written.
    unlinkSync(join(out, 'a-hard', 'link2'));
    unlinkSync(join(out, 'other-dir', 'link3'));
    unlinkSync(join(out, 'a-hard', 'pair-b'));
    const linked = (rel: string): boolean => !/^(a-hard|other-dir)(\/|$)/.test(rel);
    const include = ['--include', join(src, 'a-hard'), '--include', join(src, 'other-dir')];
    const summary = await restore(sb, 'latest', target, include);
    expect(summary.failures).toEqual([]);
    expect(diffTrees(source, snapshotTree(out), { ignore: linked })).toEqual([]);
  }, 600_000);
});

describe('special files round trip', () => {
  let sb: Sandbox;
  let restores = 0;

  beforeAll(async () => {
    assertRoot('Creating device nodes');
    sb = await Sandbox.create('special');
    await sb.init();
  });

  afterAll(async () => {
    killStartedProcesses();
    await sb?.cleanup();
  });

  /** Makes a FIFO or device node at a raw-byte path: created under a plain name, then renamed. */
  function makeSpecial(dir: string, name: Buffer, kind: 'fifo' | 'null-device'): void {
    const plain = join(dir, '.creating');
    if (kind === 'fifo') execFileSync('mkfifo', ['-m', '640', '--', plain]);
    else execFileSync('mknod', ['-m', '666', '--', plain, 'c', '1', '3']);
    renameSync(plain, bpath(dir, name));
  }

  async function roundTrip(src: string): Promise<void> {
    const source = snapshotTree(src);
    await sb.backup([src]);
    const target = sb.path(`out-${(restores += 1)}`);
    const summary = await restore(sb, 'latest', target, ['--verify']);
    expect(summary.failures).toEqual([]);
    expect(diffTrees(source, snapshotTree(restoredPath(target, src)))).toEqual([]);
  }

  it('restores FIFOs and device nodes', async () => {
    const src = sb.path('plain');
    mkdirSync(src);
    makeSpecial(src, Buffer.from('fifo'), 'fifo');
    makeSpecial(src, Buffer.from('-fifo with space\nand newline'), 'fifo');
    makeSpecial(src, Buffer.from('null'), 'null-device');
    await roundTrip(src);
  }, 120_000);

  it('restores FIFOs and device nodes whose names are not UTF-8', async () => {
    const src = sb.path('raw-names');
    mkdirSync(src);
    makeSpecial(src, Buffer.from([0x70, 0x69, 0x70, 0x65, 0xff]), 'fifo');
    makeSpecial(src, Buffer.from([0x6e, 0x75, 0x6c, 0x6c, 0xfe]), 'null-device');
    await roundTrip(src);
  }, 120_000);
});

describe('differences between points', () => {
  let sb: Sandbox;

  beforeAll(async () => {
    sb = await Sandbox.create('diff');
    await sb.init();
  });

  afterAll(async () => {
    killStartedProcesses();
    await sb?.cleanup();
  });

  it('shows added, removed and modified files, and nothing else', async () => {
    const src = sb.path('src');
    const dir = join(src, 'changes');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'modify.txt'), 'before\n');
    writeFileSync(join(dir, 'remove.txt'), 'to be removed\n');
    writeFileSync(join(dir, 'keep.txt'), 'unchanged\n');
    mkdirSync(join(src, 'untouched'));
    writeFileSync(join(src, 'untouched', 'file'), 'same\n');
    const before = await sb.backup([src]);

    writeFileSync(join(dir, 'modify.txt'), 'after, and longer\n');
    unlinkSync(join(dir, 'remove.txt'));
    writeFileSync(join(dir, 'added.txt'), 'new\n');
    const after = await sb.backup([src]);
    expect(after.filesRead).toBe(2);

    const diff = await sb.json<{ changes: Array<{ path: string; change: string }> }>([
      'diff',
      before.id,
      after.id,
    ]);
    const content = diff.changes.filter((c) => c.change !== 'metadata');
    expect(content.sort((a, b) => a.path.localeCompare(b.path))).toEqual([
      { path: join(dir, 'added.txt'), change: 'added' },
      { path: join(dir, 'modify.txt'), change: 'modified' },
      { path: join(dir, 'remove.txt'), change: 'removed' },
    ]);
    // Only directories on the way to the changes may differ in metadata (their mtimes).
    for (const c of diff.changes.filter((x) => x.change === 'metadata')) {
      expect(dir.startsWith(c.path), `unexpected metadata change of ${c.path}`).toBe(true);
    }
    const text = await sb.ok(['diff', before.id, after.id]);
    expect(text.stdout).toContain(`+    ${join(dir, 'added.txt')}`);
    expect(text.stdout).toContain(`-    ${join(dir, 'remove.txt')}`);
    expect(text.stdout).toContain(`M    ${join(dir, 'modify.txt')}`);
  }, 120_000);
});
