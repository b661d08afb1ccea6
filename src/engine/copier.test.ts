import { createHash } from 'node:crypto';
import { readdir, readFile, truncate } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryBackend } from '../backends/index.js';
import { isHoldfastError } from '../core/index.js';
import { InlineBlobSealer } from './blob-sealer.js';
import { copyPoints, type CopyProgress } from './copier.js';
import {
  backupPaths,
  makeTestVault,
  randomBytesSeeded,
  reopenTestVault,
  tempDir,
  TEST_CONFIG,
  writeTree,
} from './engine.testkit.js';
import { decodePoint, type Point } from './point.js';
import { Restorer } from './restorer.js';
import { Vault } from './vault.js';

const OTHER = { kind: 'passphrase', passphrase: 'a different passphrase' } as const;

let dir: { path: string; cleanup(): Promise<void> };
beforeEach(async () => {
  dir = await tempDir();
});
afterEach(async () => {
  await dir.cleanup();
});

async function openTarget(backend: MemoryBackend): Promise<Vault> {
  const vault = await Vault.open(backend, OTHER);
  await vault.loadIndex();
  return vault;
}

function sealerFor(vault: Vault): InlineBlobSealer {
  return new InlineBlobSealer(vault.keys.encryption, { level: vault.config.compressionLevel });
}

function storedBytes(backend: MemoryBackend): number {
  let total = 0;
  for (const [name, data] of backend.objects()) if (name.startsWith('packs/')) total += data.length;
  return total;
}

function fingerprint(backend: MemoryBackend): string[] {
  return [...backend.objects()]
    .map(([name, data]) => `${name} ${createHash('sha256').update(data).digest('hex')}`)
    .sort();
}

async function listFiles(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(root, join(e.parentPath, e.name)))
    .sort();
}

async function expectRestores(
  vault: Vault,
  point: Point,
  src: string,
  files: Record<string, Buffer>,
) {
  const target = join(dir.path, `restore-${point.id.slice(0, 12)}`);
  const errors: unknown[] = [];
  await new Restorer(vault, point, { target, onError: (_p, e) => errors.push(e) }).run();
  expect(errors).toEqual([]);
  const out = join(target, src);
  expect(await listFiles(out)).toEqual(Object.keys(files).sort());
  for (const [rel, content] of Object.entries(files))
    expect((await readFile(join(out, rel))).equals(content)).toBe(true);
}

/** A source vault with two points of one directory that share most of their data. */
async function twoPoints() {
  const sourceBackend = new MemoryBackend('source');
  const source = await makeTestVault(sourceBackend);
  const src = join(dir.path, 'src');
  const first: Record<string, Buffer> = {
    'big.bin': randomBytesSeeded(400_000, 1),
    'a.txt': Buffer.from('first'),
    sparse: Buffer.alloc(0),
  };
  await writeTree(src, first);
  // A sparse file: its holes are numbers in the tree and must stay holes in the copy.
  await truncate(join(src, 'sparse'), 3 * 1024 * 1024);
  first['sparse'] = Buffer.alloc(3 * 1024 * 1024);
  const p1 = await backupPaths(source, [src], { tags: ['daily'] });
  const second = {
    ...first,
    'a.txt': Buffer.from('second'),
    'sub/c.bin': randomBytesSeeded(30_000, 2),
  };
  await writeTree(src, second);
  const p2 = await backupPaths(source, [src], { parent: p1 });
  const targetBackend = new MemoryBackend('target');
  await Vault.init(targetBackend, OTHER, { config: TEST_CONFIG, scrypt: { N: 1024, r: 8, p: 1 } });
  return { sourceBackend, targetBackend, src, p1, p2, first, second };
}

describe('copyPoints', () => {
  it('copies points to a vault with other keys, restorable byte for byte', async () => {
    const { sourceBackend, targetBackend, src, p1, p2, first, second } = await twoPoints();
    const source = await reopenTestVault(sourceBackend);
    const target = await openTarget(targetBackend);
    const progress: CopyProgress[] = [];
    const result = await copyPoints(source, target, [p2, p1], {
      sealer: sealerFor(target),
      onProgress: (p) => progress.push(p),
    });
    expect(result.map((r) => [r.source, r.skipped])).toEqual([
      [p2.id, false],
      [p1.id, false],
    ]);
    expect(progress.at(-1)).toMatchObject({ points: 2, pointsTotal: 2 });

    const reopened = await openTarget(targetBackend);
    const load = async (id: string) => decodePoint(id, await reopened.loadObject('point', id));
    const t1 = await load(result[1]!.target);
    const t2 = await load(result[0]!.target);
    expect(t1).toMatchObject({ time: p1.time, host: p1.host, paths: p1.paths, tags: ['daily'] });
    expect(t1.stats).toEqual(p1.stats);
    expect(t1.tree).not.toBe(p1.tree);
    expect(t2.parent).toBe(t1.id);
    await expectRestores(reopened, t1, src, first);
    await expectRestores(reopened, t2, src, second);
  });

  it('skips points the target already has and stores nothing again', async () => {
    const { sourceBackend, targetBackend, p1, p2 } = await twoPoints();
    const firstRun = await copyPoints(
      await reopenTestVault(sourceBackend),
      await openTarget(targetBackend),
      [p1],
      { sealer: sealerFor(await openTarget(targetBackend)) },
    );
    const afterFirst = storedBytes(targetBackend);
    const sourceBytes = storedBytes(sourceBackend);
    const target = await openTarget(targetBackend);
    const second = await copyPoints(await reopenTestVault(sourceBackend), target, [p1, p2], {
      sealer: sealerFor(target),
    });
    expect(second[0]).toEqual({ source: p1.id, target: firstRun[0]!.target, skipped: true });
    expect(second[1]!.skipped).toBe(false);
    // p2 shares big.bin with p1: the target grows by far less than a second copy of it.
    expect(storedBytes(targetBackend)).toBeLessThan(afterFirst * 1.3);
    expect(storedBytes(targetBackend)).toBeLessThan(sourceBytes * 1.1);

    const snapshot = fingerprint(targetBackend);
    const target3 = await openTarget(targetBackend);
    const third = await copyPoints(await reopenTestVault(sourceBackend), target3, [p1, p2], {
      sealer: sealerFor(target3),
    });
    expect(third.map((r) => r.skipped)).toEqual([true, true]);
    expect(third.map((r) => r.target)).toEqual(second.map((r) => r.target));
    expect(fingerprint(targetBackend)).toEqual(snapshot);
  });

  it('reads only the data the target lacks when both vaults share keys (a vault and its snapshot store)', async () => {
    const vault = await makeTestVault(new MemoryBackend('vault'));
    const storeBackend = new MemoryBackend('snapshots');
    const key = { kind: 'keyfile', secret: Buffer.alloc(32, 9) } as const;
    await vault.addKey(key, 'server');
    const store = await Vault.init(storeBackend, key, {
      config: { ...TEST_CONFIG, compressionLevel: 1 },
      shareKeysWith: vault,
    });
    expect(store.id).not.toBe(vault.id);
    expect(store.keyScope).toBe(vault.id);
    const src = join(dir.path, 'src');
    const files = {
      'big.bin': randomBytesSeeded(400_000, 1),
      'small.bin': randomBytesSeeded(50_000, 3),
    };
    await writeTree(src, files);
    const p1 = await backupPaths(store, [src]);
    const progress: CopyProgress[] = [];
    const first = await copyPoints(store, vault, [p1], {
      sealer: sealerFor(vault),
      onProgress: (p) => progress.push(p),
    });
    expect(progress.at(-1)?.bytes).toBe(450_000);
    const changed = { ...files, 'small.bin': randomBytesSeeded(50_000, 4) };
    await writeTree(src, changed);
    const p2 = await backupPaths(store, [src], { parent: p1 });
    progress.length = 0;
    const second = await copyPoints(store, vault, [p2], {
      sealer: sealerFor(vault),
      onProgress: (p) => progress.push(p),
    });
    // Only the changed file's data was read from the snapshot store.
    expect(progress.at(-1)?.bytes).toBe(50_000);
    // Reopened from disk with the key file, the store keeps sharing the vault's keys.
    const reopenedStore = await Vault.open(storeBackend, key);
    expect(reopenedStore.keys.id.equals(vault.keys.id)).toBe(true);
    const reopened = await reopenTestVault(vault.backend as MemoryBackend);
    const load = async (id: string) => decodePoint(id, await reopened.loadObject('point', id));
    expect((await load(second[0]!.target)).tree).toBe(p2.tree);
    await expectRestores(reopened, await load(first[0]!.target), src, files);
    await expectRestores(reopened, await load(second[0]!.target), src, changed);
  });

  it('refuses to copy a vault into itself', async () => {
    const backend = new MemoryBackend();
    const vault = await makeTestVault(backend);
    const error = await copyPoints(vault, await reopenTestVault(backend), [], {
      sealer: sealerFor(vault),
    }).catch((e: unknown) => e);
    expect(isHoldfastError(error, 'USAGE_INVALID')).toBe(true);
  });
});
