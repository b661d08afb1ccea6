import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MemoryBackend } from '../backends/index.js';
import { ManualClock, isHoldfastError } from '../core/index.js';
import { sealBlob } from './blob-codec.js';
import { BlobReader } from './blob-reader.js';
import { checkVault, type CheckPhase } from './checker.js';
import type { CheckProblem, CheckReport } from './check-report.js';
import { blobIdOf } from './crypto.js';
import {
  backupPaths,
  makeTestVault,
  randomBytesSeeded,
  reopenTestVault,
  tempDir,
  TEST_PASSPHRASE,
  writeTree,
} from './engine.testkit.js';
import { LOCK_STALE_MS } from './locks.js';
import { PackBuilder, packObjectName } from './pack.js';
import type { Point } from './point.js';
import { findDirectory, walkTree } from './tree-walk.js';
import { Vault, type VaultOptions } from './vault.js';

/** Two points over a few files, large enough for several data packs with the test config. */
interface Fixture {
  backend: MemoryBackend;
  src: string;
  points: Point[];
  /** Per point: blob id → display paths of the files that use it. */
  users: Array<Map<string, string[]>>;
  /** The vault as a fresh process would see it, index loaded. */
  view: Vault;
}

let dir: { path: string; cleanup(): Promise<void> };
let fx: Fixture;

beforeEach(async () => {
  dir = await tempDir();
  const src = join(dir.path, 'src');
  await writeTree(src, {
    'a/one.bin': randomBytesSeeded(400_000, 11),
    'a/two.bin': randomBytesSeeded(300_000, 12),
    'b/three.bin': randomBytesSeeded(500_000, 13),
    'b/c/four.bin': randomBytesSeeded(200_000, 14),
    'small.txt': 'small',
  });
  const backend = new MemoryBackend();
  const vault = await makeTestVault(backend);
  const first = await backupPaths(vault, [src]);
  await writeTree(src, {
    'a/two.bin': randomBytesSeeded(300_000, 22),
    'b/new.bin': randomBytesSeeded(150_000, 23),
  });
  const second = await backupPaths(vault, [src], { parent: first });
  const view = await reopenTestVault(backend);
  const users = await Promise.all([first, second].map((p) => blobUsers(view, p)));
  fx = { backend, src, points: [first, second], users, view };
});

afterEach(async () => {
  await dir.cleanup();
});

async function blobUsers(vault: Vault, point: Point): Promise<Map<string, string[]>> {
  const users = new Map<string, string[]>();
  for await (const { path, node } of walkTree(new BlobReader(vault), point.tree, '/', true)) {
    for (const piece of node.content ?? []) {
      if (typeof piece !== 'string') continue;
      users.set(piece, [...(users.get(piece) ?? []), path]);
    }
  }
  return users;
}

/** Opens the vault without loading its index, as `holdfast check` does. */
function openForCheck(options: VaultOptions = {}): Promise<Vault> {
  return Vault.open(fx.backend, { kind: 'passphrase', passphrase: TEST_PASSPHRASE }, options);
}

/** Every point's files that use one of `blobs`, as the report's `affected` should list them. */
function expectedAffected(blobs: Iterable<string>): Array<{ point: string; paths: string[] }> {
  const out: Array<{ point: string; paths: string[] }> = [];
  fx.points.forEach((point, i) => {
    const paths = new Set<string>();
    for (const blob of blobs) for (const p of fx.users[i]!.get(blob) ?? []) paths.add(p);
    if (paths.size > 0) out.push({ point: point.id, paths: [...paths].sort() });
  });
  return out;
}

function affectedOf(report: CheckReport): Array<{ point: string; paths: string[] }> {
  return report.affected.map((a) => ({ point: a.point, paths: [...a.paths] }));
}

function kinds(report: CheckReport): string[] {
  return [...new Set(report.problems.map((p) => p.kind))].sort();
}

function find(report: CheckReport, kind: string): CheckProblem[] {
  return report.problems.filter((p) => p.kind === kind);
}

/** Data packs, each with the blobs the index places in it by offset. */
function dataPacks(): Map<string, Array<{ id: string; offset: number; length: number }>> {
  const packs = new Map<string, Array<{ id: string; offset: number; length: number }>>();
  for (const [id, at] of fx.view.index.entries()) {
    if (at.type !== 'data') continue;
    packs.set(at.pack, [
      ...(packs.get(at.pack) ?? []),
      { id, offset: at.offset, length: at.length },
    ]);
  }
  for (const blobs of packs.values()) blobs.sort((a, b) => a.offset - b.offset);
  return packs;
}

function filePieces(point: Point, rel: string): string[] {
  const i = fx.points.indexOf(point);
  const path = join(fx.src, rel);
  return [...fx.users[i]!].filter(([, paths]) => paths.includes(path)).map(([id]) => id);
}

describe('checkVault', () => {
  it('finds nothing wrong with a clean vault, structure only and reading every pack', async () => {
    const structure = await checkVault(await openForCheck());
    expect(structure.problems).toEqual([]);
    expect(structure.ok).toBe(true);
    expect(structure.stats.packs).toBeGreaterThanOrEqual(5);
    expect(structure.stats.points).toBe(2);
    expect(structure.stats.trees).toBeGreaterThanOrEqual(6);
    expect(structure.stats.packsRead).toBe(0);

    const full = await checkVault(await openForCheck(), { readDataFraction: 1 });
    expect(full.problems).toEqual([]);
    expect(full.ok).toBe(true);
    expect(full.stats.packsRead).toBe(full.stats.packs);
    expect(full.stats.blobsRead).toBe(full.stats.blobs);
    const stored = [...fx.backend.objects()].filter(([name]) => name.startsWith('packs/'));
    expect(full.stats.bytesRead).toBe(stored.reduce((n, [, b]) => n + b.length, 0));
    expect(JSON.parse(JSON.stringify(full))).toEqual(full);
  });

  it('reports a flipped byte in a pack, its blob and the files using it in every point', async () => {
    const [blob] = filePieces(fx.points[0]!, 'a/one.bin');
    const at = fx.view.index.get(blob!)!;
    fx.backend.objects().get(packObjectName(at.pack))![at.offset + (at.length >> 1)]! ^= 0x40;

    const structure = await checkVault(await openForCheck());
    expect(structure.ok).toBe(true);

    const report = await checkVault(await openForCheck(), { readDataFraction: 1 });
    expect(report.ok).toBe(false);
    expect(kinds(report)).toEqual(['blob-damaged', 'pack-damaged']);
    expect(report.damagedPacks).toEqual([at.pack]);
    expect(report.damagedBlobs).toEqual([blob]);
    expect(find(report, 'blob-damaged')[0]).toMatchObject({ pack: at.pack, blob });
    expect(find(report, 'pack-damaged')[0]?.message).toMatch(/do not match its name/);
    const affected = affectedOf(report);
    expect(affected).toEqual(expectedAffected([blob!]));
    expect(affected.map((a) => a.point).sort()).toEqual(fx.points.map((p) => p.id).sort());
    expect(affected[0]?.paths).toContain(join(fx.src, 'a/one.bin'));
  });

  it('reports a damaged pack header without losing the blobs the index still finds', async () => {
    const [pack] = [...dataPacks()][0]!;
    const bytes = fx.backend.objects().get(packObjectName(pack))!;
    bytes[bytes.length - 12]! ^= 0x01;

    const report = await checkVault(await openForCheck(), { readDataFraction: 1 });
    expect(kinds(report)).toEqual(['pack-damaged']);
    expect(find(report, 'pack-damaged')[0]?.message).toMatch(/header cannot be read/);
    expect(report.damagedPacks).toEqual([pack]);
    expect(report.damagedBlobs).toEqual([]);
    expect(report.affected).toEqual([]);
  });

  it('detects a truncated pack without reading data', async () => {
    const [pack, blobs] = [...dataPacks()].find(([, b]) => b.length >= 3)!;
    const bytes = fx.backend.objects().get(packObjectName(pack))!;
    const keep = blobs[1]!.offset + 1;
    fx.backend.objects().set(packObjectName(pack), bytes.subarray(0, keep));

    const report = await checkVault(await openForCheck());
    expect(report.ok).toBe(false);
    expect(kinds(report)).toEqual(['pack-truncated']);
    expect(find(report, 'pack-truncated')[0]?.pack).toBe(pack);
    expect(report.damagedPacks).toEqual([pack]);
    const lost = blobs.filter((b) => b.offset + b.length > keep).map((b) => b.id);
    expect(lost).not.toContain(blobs[0]!.id);
    expect(report.damagedBlobs).toEqual([...lost].sort());
    expect(affectedOf(report)).toEqual(expectedAffected(lost));
  });

  it('reports a deleted pack and every file that used its blobs', async () => {
    const [pack, blobs] = [...dataPacks()][0]!;
    fx.backend.objects().delete(packObjectName(pack));

    const report = await checkVault(await openForCheck(), { readDataFraction: 1 });
    expect(kinds(report)).toEqual(['pack-missing']);
    expect(find(report, 'pack-missing')[0]).toMatchObject({ pack, severity: 'error' });
    expect(report.damagedBlobs).toEqual(blobs.map((b) => b.id).sort());
    const expected = expectedAffected(blobs.map((b) => b.id));
    expect(expected.length).toBeGreaterThan(0);
    expect(affectedOf(report)).toEqual(expected);
    expect(report.stats.packsRead).toBe(report.stats.packs - 1);
  });

  it('reports a damaged index file and treats its packs as unindexed', async () => {
    const [name, bytes] = [...fx.backend.objects()].find(([n]) => n.startsWith('index/'))!;
    bytes[bytes.length - 3]! ^= 0x01;

    const report = await checkVault(await openForCheck());
    expect(report.ok).toBe(false);
    const damaged = find(report, 'index-damaged');
    expect(damaged).toHaveLength(1);
    expect(damaged[0]?.index).toBe(name.slice('index/'.length));
    const unindexed = find(report, 'pack-unindexed');
    expect(unindexed.length).toBeGreaterThan(0);
    expect(unindexed[0]?.message).toMatch(/rebuild the index before pruning/);
    expect(report.affected.length).toBeGreaterThan(0);
  });

  it('names a damaged point and still checks the others', async () => {
    const damagedId = fx.points[0]!.id;
    fx.backend.objects().get(`points/${damagedId}`)![20]! ^= 0xff;

    const report = await checkVault(await openForCheck());
    expect(kinds(report)).toEqual(['point-damaged']);
    expect(find(report, 'point-damaged')[0]).toMatchObject({ point: damagedId });
    expect(find(report, 'point-damaged')[0]?.message).toContain(damagedId);
    expect(report.stats.points).toBe(1);
    expect(report.ok).toBe(false);
  });

  it('reports a damaged tree as its directory in the points that use it', async () => {
    const reader = new BlobReader(fx.view);
    const { tree } = await findDirectory(reader, fx.points[0]!.tree, join(fx.src, 'b'));
    const at = fx.view.index.get(tree)!;
    fx.backend.objects().get(packObjectName(at.pack))![at.offset + 14]! ^= 0x10;

    const report = await checkVault(await openForCheck());
    expect(kinds(report)).toEqual(['tree-damaged']);
    expect(find(report, 'tree-damaged')[0]).toMatchObject({ blob: tree });
    // The second backup added a file under b/, so only the first point has this tree.
    expect(affectedOf(report)).toEqual([{ point: fx.points[0]!.id, paths: [join(fx.src, 'b')] }]);
  });

  it('warns about a pack in no index but stays ok', async () => {
    const data = randomBytesSeeded(1000, 99);
    const id = blobIdOf(fx.view.keys.id, data);
    const builder = new PackBuilder();
    builder.add('data', id, sealBlob(fx.view.keys.encryption, 'data', id, data, null), 1000);
    const pack = builder.finish(fx.view.keys.encryption);
    await fx.backend.put(packObjectName(pack.id), pack.bytes);

    const report = await checkVault(await openForCheck(), { readDataFraction: 1 });
    expect(report.ok).toBe(true);
    expect(report.problems).toEqual([
      expect.objectContaining({ kind: 'pack-unindexed', severity: 'warning', pack: pack.id }),
    ]);
    expect(report.problems[0]?.message).toMatch(/removed by the next prune/);
  });

  it('warns about a stale lock but not a fresh one', async () => {
    const clock = new ManualClock(10 * LOCK_STALE_MS);
    const lock = { host: 'elsewhere', pid: 4242, exclusive: false, purpose: 'backup', created: 0 };
    const stale = await fx.view.saveObject('lock', { ...lock, refreshed: 0 });
    await fx.view.saveObject('lock', { ...lock, refreshed: clock.now() - 1000 });

    const report = await checkVault(await openForCheck({ clock }));
    expect(report.ok).toBe(true);
    expect(report.problems).toEqual([
      expect.objectContaining({ kind: 'lock-stale', severity: 'warning', lock: stale }),
    ]);
  });

  it('reads about the requested fraction of packs, picked by the vault random source', async () => {
    const picks: string[][] = [];
    for (let run = 0; run < 2; run += 1) {
      let seed = 7;
      const vault = await openForCheck({ random: (n) => randomBytesSeeded(n, seed++) });
      // Count the downloads of the data phase only: walking trees reads tree packs as well.
      let phase: CheckPhase = 'index';
      const read: string[] = [];
      const original = fx.backend.get.bind(fx.backend);
      const get = vi.spyOn(fx.backend, 'get').mockImplementation((name, options) => {
        if (phase === 'data' && name.startsWith('packs/')) read.push(name);
        return original(name, options);
      });
      const report = await checkVault(vault, {
        readDataFraction: 0.5,
        onProgress: (p) => (phase = p.phase),
      });
      get.mockRestore();
      expect(report.ok).toBe(true);
      expect(report.stats.packsRead).toBe(Math.ceil(report.stats.packs / 2));
      expect(read).toHaveLength(report.stats.packsRead);
      picks.push(read.sort());
    }
    expect(picks[1]).toEqual(picks[0]);
  });

  it('reports progress per phase and stops when cancelled', async () => {
    const seen = new Set<CheckPhase>();
    await checkVault(await openForCheck(), {
      readDataFraction: 1,
      onProgress: (p) => {
        expect(p.done).toBeLessThanOrEqual(p.total);
        seen.add(p.phase);
      },
    });
    expect([...seen].sort()).toEqual(['data', 'index', 'packs', 'points']);

    const controller = new AbortController();
    controller.abort();
    const error = await checkVault(await openForCheck(), { signal: controller.signal }).catch(
      (e: unknown) => e,
    );
    expect(isHoldfastError(error, 'CANCELLED')).toBe(true);
  });
});
