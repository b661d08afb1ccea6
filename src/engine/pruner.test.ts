import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryBackend, type Backend, type ObjectInfo, type OpOptions } from '../backends/index.js';
import { HoldfastError, isHoldfastError } from '../core/index.js';
import { BlobReader } from './blob-reader.js';
import { blobIdOf } from './crypto.js';
import { decodeTree } from './tree.js';
import { InlineBlobSealer } from './blob-sealer.js';
import {
  backupPaths,
  makeTestVault,
  randomBytesSeeded,
  reopenTestVault,
  tempDir,
  writeTree,
} from './engine.testkit.js';
import { acquireLock } from './locks.js';
import { lockPoint } from './object-locks.js';
import { packObjectName } from './pack.js';
import type { Point } from './point.js';
import { prune, type PruneOptions, type PruneReport } from './pruner.js';
import { Restorer } from './restorer.js';
import type { Vault } from './vault.js';

type Files = Record<string, Buffer>;

let dir: { path: string; cleanup(): Promise<void> };
beforeEach(async () => {
  dir = await tempDir();
});
afterEach(async () => {
  await dir.cleanup();
});

/** Backs up `files` from a fresh source directory; returns the point and where it came from. */
async function backup(vault: Vault, name: string, files: Files): Promise<[Point, string, Files]> {
  const src = join(dir.path, name);
  await writeTree(src, files);
  return [await backupPaths(vault, [src]), src, files];
}

async function listFiles(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(root, join(e.parentPath, e.name)))
    .sort();
}

/** Restores `point` from a freshly opened vault and checks every file byte for byte. */
async function expectRestores(backend: MemoryBackend, [point, src, files]: [Point, string, Files]) {
  const vault = await reopenTestVault(backend);
  const target = join(dir.path, `restore-${point.id.slice(0, 8)}-${Math.random()}`);
  const errors: unknown[] = [];
  await new Restorer(vault, point, { target, onError: (_p, e) => errors.push(e) }).run();
  expect(errors).toEqual([]);
  const out = join(target, src);
  expect(await listFiles(out)).toEqual(Object.keys(files).sort());
  for (const [rel, content] of Object.entries(files))
    expect((await readFile(join(out, rel))).equals(content)).toBe(true);
}

/** A memory backend with object locks: a delete of a locked object is refused and noted. */
class LockingMemoryBackend extends MemoryBackend {
  override readonly capabilities = { ...new MemoryBackend().capabilities, objectLock: true };
  readonly locks = new Map<string, number>();
  readonly refusedDeletes: string[] = [];

  async extendRetention(name: string, until: number): Promise<void> {
    await super.stat(name);
    this.locks.set(name, Math.max(this.locks.get(name) ?? 0, until));
  }

  override async stat(name: string, options?: OpOptions): Promise<ObjectInfo> {
    const info = await super.stat(name, options);
    const until = this.locks.get(name);
    return until === undefined ? info : { ...info, retainUntil: until };
  }

  override async delete(name: string, options?: OpOptions): Promise<void> {
    if ((this.locks.get(name) ?? 0) > Date.now()) {
      this.refusedDeletes.push(name);
      throw new HoldfastError('BACKEND_PERMISSION', `${name} is locked`);
    }
    return super.delete(name, options);
  }
}

/** Every object's name and hash: cheap to compare, unlike megabytes of buffers. */
function fingerprint(backend: MemoryBackend): string[] {
  return [...backend.objects()]
    .map(([name, data]) => `${name} ${createHash('sha256').update(data).digest('hex')}`)
    .sort();
}

function storedBytes(backend: MemoryBackend): number {
  let total = 0;
  for (const [name, data] of backend.objects()) if (name.startsWith('packs/')) total += data.length;
  return total;
}

async function run(
  backend: MemoryBackend,
  extra: Partial<PruneOptions> = {},
): Promise<PruneReport> {
  const vault = await reopenTestVault(backend);
  const sealer = new InlineBlobSealer(vault.keys.encryption, { level: 3 });
  return prune(vault, { sealer, ...extra });
}

const forget = (backend: MemoryBackend, point: Point): Promise<void> =>
  backend.delete(`points/${point.id}`);

async function threeVersions(backend: MemoryBackend) {
  const vault = await makeTestVault(backend);
  const shared = randomBytesSeeded(200_000, 1);
  const v1 = await backup(vault, 'v1', {
    'shared.bin': shared,
    'old.bin': randomBytesSeeded(500_000, 2),
  });
  const v2 = await backup(vault, 'v2', {
    'shared.bin': shared,
    'new.bin': randomBytesSeeded(300_000, 3),
  });
  const v3 = await backup(vault, 'v3', { 'sub/shared.bin': shared, 'note.txt': Buffer.from('hi') });
  return { v1, v2, v3 };
}

describe('prune', () => {
  it('frees the space of forgotten points and keeps the others restorable', async () => {
    const backend = new MemoryBackend();
    const { v1, v2, v3 } = await threeVersions(backend);
    const before = storedBytes(backend);
    await forget(backend, v1[0]);

    // Which packs hold old.bin's chunks next to used ones depends on the order files were read
    // in (concurrent); a threshold of 1 repacks every pack with anything unused, so all of
    // old.bin comes back whatever that order was (the default threshold is tested below).
    const report = await run(backend, { repackThreshold: 1 });
    expect(report.points).toBe(2);
    expect(report.packsDeleted + report.packsRepacked).toBeGreaterThan(0);
    expect(report.blobsRemoved).toBeGreaterThan(0);
    expect(report.bytesFreed).toBe(before - storedBytes(backend));
    // old.bin was 500 kB of incompressible data used by v1 only.
    expect(report.bytesFreed).toBeGreaterThan(400_000);
    expect(await (await reopenTestVault(backend)).listObjects('index')).toHaveLength(1);
    await expectRestores(backend, v2);
    await expectRestores(backend, v3);

    const snapshot = fingerprint(backend);
    const again = await run(backend);
    expect(again).toMatchObject({
      packsDeleted: 0,
      packsRepacked: 0,
      orphanPacks: 0,
      packsWritten: 0,
      blobsRemoved: 0,
      indexFilesReplaced: 0,
      bytesFreed: 0,
    });
    expect(fingerprint(backend)).toEqual(snapshot);
  });

  it('leaves an index read before it stale until refreshIndex reads it again', async () => {
    const backend = new MemoryBackend();
    const { v1 } = await threeVersions(backend);
    const stale = await reopenTestVault(backend);
    await forget(backend, v1[0]);
    await run(backend, { repackThreshold: 1 });
    const fresh = await reopenTestVault(backend);
    const gone = [...stale.index.entries()].filter(([id]) => !fresh.index.has(id));
    expect(gone.length).toBeGreaterThan(0);

    expect(await stale.refreshIndex()).toBe(true);
    for (const [id] of gone) expect(stale.index.has(id)).toBe(false);
    expect(stale.index.size).toBe(fresh.index.size);
    expect(await stale.refreshIndex()).toBe(false);
    // Backing v1's files up again stores old.bin anew instead of pointing at the pruned blobs.
    await expectRestores(backend, await backup(stale, 'v1-again', v1[2]));
  });

  it('never asks to delete an object under a retention lock, and frees it once the lock ends', async () => {
    const backend = new LockingMemoryBackend();
    const { v1, v2, v3 } = await threeVersions(backend);
    const vault = await reopenTestVault(backend);
    const far = Date.now() + 86_400_000;
    // Lock everything v1 needs (as an immutable vault would), then forget v1.
    await lockPoint(vault, v1[0].id, far, { mode: 'governance', slackMs: 0 });
    expect(backend.locks.size).toBeGreaterThan(3);
    // (The test backend refuses, and notes, a delete of a locked object.)
    await forget(backend, v1[0]).catch(() => undefined);
    expect(backend.refusedDeletes.splice(0)).toEqual([`points/${v1[0].id}`]);
    backend.locks.delete(`points/${v1[0].id}`);
    await forget(backend, v1[0]);

    const report = await run(backend, { repackThreshold: 1 });
    expect(backend.refusedDeletes).toEqual([]);
    expect(report.objectsLocked).toBeGreaterThan(0);
    await expectRestores(backend, v2);
    await expectRestores(backend, v3);

    backend.locks.clear();
    const later = await run(backend, { repackThreshold: 1 });
    expect(later.objectsLocked).toBe(0);
    expect(later.orphanPacks).toBeGreaterThan(0);
    expect(backend.refusedDeletes).toEqual([]);
    await expectRestores(backend, v2);
  });

  it('repacks packs that are mostly unused, unless the threshold says otherwise', async () => {
    for (const threshold of [0.5, 0]) {
      const backend = new MemoryBackend();
      const vault = await makeTestVault(backend);
      const small = randomBytesSeeded(30_000, 10);
      // One backup with a small and a large file, so packs mix data both use and data only the
      // first point uses; the second point keeps only the small file.
      const v1 = await backup(vault, 'v1', {
        'small.bin': small,
        'big.bin': randomBytesSeeded(700_000, 11),
      });
      const v2 = await backup(vault, 'v2', { 'small.bin': small });
      await forget(backend, v1[0]);
      const report = await run(backend, { repackThreshold: threshold });
      if (threshold === 0) {
        expect(report.packsRepacked).toBe(0);
        expect(report.packsKept).toBeGreaterThan(0);
      } else {
        expect(report.packsRepacked).toBeGreaterThan(0);
        expect(report.blobsRepacked).toBeGreaterThan(0);
        expect(report.packsWritten).toBeGreaterThan(0);
        expect(storedBytes(backend)).toBeLessThan(100_000);
      }
      await expectRestores(backend, v2);
      expect((await run(backend, { repackThreshold: threshold })).bytesFreed).toBe(0);
    }
  });

  it('deletes packs that no index names', async () => {
    const backend = new MemoryBackend();
    const { v2 } = await threeVersions(backend);
    const orphan = packObjectName('ab'.repeat(32));
    await backend.put(orphan, randomBytesSeeded(5_000, 9));
    const report = await run(backend);
    expect(report.orphanPacks).toBe(1);
    expect(report.packsDeleted).toBe(0);
    expect(backend.objects().has(orphan)).toBe(false);
    await expectRestores(backend, v2);
  });

  it('writes nothing in a dry run and predicts the real run', async () => {
    const backend = new MemoryBackend();
    const { v1, v3 } = await threeVersions(backend);
    await forget(backend, v1[0]);
    await backend.put(packObjectName('cd'.repeat(32)), Buffer.from('left by a crash'));
    const snapshot = fingerprint(backend);
    const dry = await run(backend, { dryRun: true, repackThreshold: 1 });
    expect(fingerprint(backend)).toEqual(snapshot);
    expect(dry.dryRun).toBe(true);
    expect(dry.packsDeleted + dry.orphanPacks).toBeGreaterThan(1);
    const real = await run(backend, { repackThreshold: 1 });
    for (const key of ['packsKept', 'packsDeleted', 'packsRepacked', 'orphanPacks'] as const)
      expect(real[key]).toBe(dry[key]);
    expect(real.blobsRemoved).toBe(dry.blobsRemoved);
    expect(real.blobsRepacked).toBe(dry.blobsRepacked);
    await expectRestores(backend, v3);
  });

  it('waits for shared locks: refuses at once with lockWaitMs 0, runs after release', async () => {
    const backend = new MemoryBackend();
    const { v1, v2 } = await threeVersions(backend);
    await forget(backend, v1[0]);
    const lock = await acquireLock(await reopenTestVault(backend), {
      exclusive: false,
      purpose: 'backup',
    });
    const snapshot = fingerprint(backend);
    const refused = await run(backend).catch((error: unknown) => error);
    expect(isHoldfastError(refused, 'VAULT_LOCKED')).toBe(true);
    expect(fingerprint(backend)).toEqual(snapshot);
    await lock.release();
    expect((await run(backend)).packsDeleted).toBeGreaterThan(0);
    expect([...backend.objects().keys()].some((n) => n.startsWith('locks/'))).toBe(false);
    await expectRestores(backend, v2);
  });

  it('deletes nothing when a point uses data the index lacks', async () => {
    const backend = new MemoryBackend();
    const { v1 } = await threeVersions(backend);
    await forget(backend, v1[0]);
    const indexes = [...backend.objects().keys()].filter((n) => n.startsWith('index/'));
    await backend.delete(indexes[0]!);
    const snapshot = fingerprint(backend);
    const error = await run(backend).catch((e: unknown) => e);
    expect(isHoldfastError(error, 'VAULT_INTEGRITY')).toBe(true);
    expect(String(error)).toContain('holdfast check');
    expect(fingerprint(backend)).toEqual(snapshot);
  });

  it('leaves every remaining point readable when it dies at any write', async () => {
    const original = new MemoryBackend();
    const { v1, v2, v3 } = await threeVersions(original);
    await forget(original, v1[0]);
    await original.put(packObjectName('ef'.repeat(32)), Buffer.from('orphan'));
    let crashes = 0;
    for (let budget = 0; ; budget += 1) {
      const store = new MemoryBackend();
      for (const [name, data] of original.objects()) await store.put(name, data);
      const vault = await reopenTestVault(new CrashingBackend(store, budget));
      const sealer = new InlineBlobSealer(vault.keys.encryption, { level: 3 });
      const died = await prune(vault, { sealer, repackThreshold: 1 }).then(
        () => false,
        () => true,
      );
      await expectReadable(store, [v2[0], v3[0]]);
      // The next prune finishes what the dead one left, orphans included.
      await run(store, { repackThreshold: 1 });
      expect((await run(store)).bytesFreed).toBe(0);
      await expectReadable(store, [v2[0], v3[0]]);
      if (!died) break;
      crashes += 1;
    }
    // Repacked pack, index file, three old index files and several packs: many instants tried.
    expect(crashes).toBeGreaterThan(5);
  });
});

/** Reads every blob the points use and checks each against its keyed hash. */
async function expectReadable(backend: MemoryBackend, points: readonly Point[]): Promise<void> {
  const vault = await reopenTestVault(backend);
  const reader = new BlobReader(vault);
  const trees = points.map((p) => p.tree);
  for (let id = trees.pop(); id !== undefined; id = trees.pop()) {
    const bytes = await reader.load(id, 'tree');
    expect(blobIdOf(vault.keys.id, bytes)).toBe(id);
    for (const node of decodeTree(bytes, id)) {
      if (node.subtree !== undefined) trees.push(node.subtree);
      for (const piece of node.content ?? []) {
        if (typeof piece !== 'string') continue;
        expect(blobIdOf(vault.keys.id, await reader.load(piece, 'data'))).toBe(piece);
      }
    }
  }
}

/** A backend whose process "dies" after `budget` writes: every later put or delete fails. */
class CrashingBackend implements Backend {
  readonly capabilities: Backend['capabilities'];
  readonly location = 'memory:crashing';

  constructor(
    private readonly inner: MemoryBackend,
    private budget: number,
  ) {
    this.capabilities = inner.capabilities;
  }

  private spend(name: string): void {
    // Lock files are not vault state; letting them through keeps lock handling out of the way.
    if (name.startsWith('locks/')) return;
    if (this.budget <= 0) throw new HoldfastError('BACKEND_IO', 'Simulated crash.');
    this.budget -= 1;
  }

  async put(name: string, data: Uint8Array, options?: OpOptions): Promise<void> {
    this.spend(name);
    await this.inner.put(name, data, options);
  }

  async delete(name: string, options?: OpOptions): Promise<void> {
    this.spend(name);
    await this.inner.delete(name, options);
  }

  get(name: string, options?: OpOptions): Promise<Buffer> {
    return this.inner.get(name, options);
  }

  getRange(name: string, offset: number, length: number, options?: OpOptions): Promise<Buffer> {
    return this.inner.getRange(name, offset, length, options);
  }

  list(prefix: string, options?: OpOptions): AsyncIterable<ObjectInfo> {
    return this.inner.list(prefix, options);
  }

  stat(name: string, options?: OpOptions): Promise<ObjectInfo> {
    return this.inner.stat(name, options);
  }

  async close(): Promise<void> {}
}
