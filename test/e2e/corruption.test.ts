/**
 * Damage to a vault, one kind at a time: `check --read-data` must find it (exit 4) and name
 * what is affected, and a restore must still restore what is intact, list what is not (exit 3)
 * and never hand back damaged bytes as if they were good. The vault is on local disk, in Azure
 * Blob (Azurite) and in S3 (s3rver); the damage is done to its files or objects directly.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  STORE_KINDS,
  startStore,
  type TestStore,
} from '../../src/backends/object-stores.testkit.js';
import type { VaultObjects } from '../../src/backends/vault-objects.testkit.js';
import {
  describeRun,
  killStartedProcesses,
  packKey,
  prng,
  randomInt,
  restoredPath,
  Sandbox,
  writeSeededTree,
  type CheckReport,
  type RestoreSummary,
  type RunEnv,
} from './cli.testkit.js';
import { filePaths, snapshotTree, type TreeSnapshot } from './tree.testkit.js';

const SEED = 0xc0_44_07;

/** Flips one byte of an object in place. */
async function flipByte(objects: VaultObjects, key: string, offset: number): Promise<void> {
  const bytes = await objects.read(key);
  bytes[offset] = bytes[offset]! ^ 0x5a;
  await objects.write(key, bytes);
}

/** Bytes of a pack before its header: flipping one there damages a blob, not the header. */
async function blobArea(objects: VaultObjects, key: string): Promise<number> {
  const bytes = await objects.read(key);
  const headerLength = bytes.readUInt32LE(bytes.byteLength - 8);
  return bytes.byteLength - 8 - headerLength;
}

/** The size of an object. */
async function size(objects: VaultObjects, key: string): Promise<number> {
  return (await objects.read(key)).byteLength;
}

describe.each(STORE_KINDS)('damaged vaults (vault: %s)', (kind) => {
  let store: TestStore | undefined;
  let sb: Sandbox;
  let src: string;
  /** The source as the first point saw it (only a/), and as the second one did (a/ and b/). */
  let asFirst: TreeSnapshot;
  let asSecond: TreeSnapshot;
  let firstPoint: string;
  let secondPoint: string;
  /** Data pack and index file written by the second backup, and the first backup's index. */
  let secondDataPack: string;
  let firstIndex: string;
  let cases = 0;
  const next = prng(SEED);

  beforeAll(async () => {
    store = await startStore(kind, 'corruption');
    sb = await Sandbox.create(`corruption-${kind}`, { store });
    await sb.init();
    src = sb.path('src');
    writeSeededTree(join(src, 'a'), { count: 8, minSize: 50_000, maxSize: 300_000, seed: 71 });
    asFirst = snapshotTree(src);
    firstPoint = (await sb.backup([src])).id;
    const packsBefore = new Set(await sb.packs());
    const indexBefore = await sb.vaultFiles('index');
    expect(indexBefore).toHaveLength(1);
    firstIndex = indexBefore[0]!;

    writeSeededTree(join(src, 'b'), { count: 8, minSize: 50_000, maxSize: 300_000, seed: 72 });
    asSecond = snapshotTree(src);
    secondPoint = (await sb.backup([src])).id;
    const newPacks = (await sb.packs()).filter((p) => !packsBefore.has(p));
    // The second backup wrote one data pack (b/'s content) and one small tree pack.
    expect(newPacks).toHaveLength(2);
    const sizes = new Map<string, number>();
    for (const p of newPacks) sizes.set(p, await size(sb.objects(), packKey(p)));
    secondDataPack = newPacks.sort((x, y) => sizes.get(y)! - sizes.get(x)!)[0]!;
  }, 120_000);

  afterAll(async () => {
    killStartedProcesses();
    await sb?.cleanup();
    await store?.stop();
  });

  /** A fresh copy of the undamaged vault (on the same store) and a restore target for one case. */
  async function copyVault(): Promise<{ objects: VaultObjects; env: RunEnv; target: string }> {
    cases += 1;
    const dir = sb.path(`case-${cases}`);
    mkdirSync(dir);
    const vault = sb.location(`case-${cases}/vault`);
    await sb.copyVault(vault);
    return {
      objects: sb.objects(vault),
      env: { HOLDFAST_VAULT: vault },
      target: join(dir, 'target'),
    };
  }

  async function check(env: RunEnv): Promise<{ report: CheckReport; text: string }> {
    const json = await sb.cli(['--json', 'check', '--read-data'], env);
    expect(json.code, describeRun(['check', '--read-data'], json)).toBe(4);
    const report = JSON.parse(json.stdout) as CheckReport;
    expect(report.ok).toBe(false);
    const plain = await sb.cli(['check', '--read-data'], env);
    expect(plain.code, describeRun(['check', '--read-data'], plain)).toBe(4);
    return { report, text: plain.stdout + plain.stderr };
  }

  /** Source-relative paths of the files check says are damaged in a point. */
  function affectedFiles(report: CheckReport, point: string): string[] {
    const entry = report.affected.find((a) => a.point === point);
    return (entry?.paths ?? []).map((p) => p.slice(src.length + 1)).sort();
  }

  /**
   * Restores `ref` and checks the outcome against `source`: every file is either restored
   * identically or listed as failed (itself or a directory above it), never silently wrong.
   * Returns the source-relative paths listed as failed.
   */
  async function restoreAndCompare(
    env: RunEnv,
    ref: string,
    target: string,
    source: TreeSnapshot,
    code: number | number[],
  ): Promise<{ failed: string[]; summary: RestoreSummary; stderr: string }> {
    const args = ['--json', 'restore', ref, '--target', target];
    const r = await sb.cli(args, env);
    const codes = Array.isArray(code) ? code : [code];
    expect(codes, describeRun(args, r)).toContain(r.code);
    const summary = JSON.parse(r.stdout) as RestoreSummary;
    const out = restoredPath(target, src);
    const failed = summary.failures
      .map((f) => f.path)
      .filter((p) => p.startsWith(out + '/'))
      .map((p) => p.slice(out.length + 1))
      .sort();
    const listed = (rel: string): boolean =>
      failed.some((f) => rel === f || rel.startsWith(f + '/'));
    let restored: TreeSnapshot;
    try {
      restored = snapshotTree(out);
    } catch {
      restored = new Map();
    }
    for (const rel of filePaths(source)) {
      const got = restored.get(rel);
      if (listed(rel)) continue;
      expect(got?.hash, `${rel} was neither restored intact nor listed as failed`).toBe(
        source.get(rel)!.hash,
      );
    }
    return { failed, summary, stderr: r.stderr };
  }

  it('finds a flipped byte in a pack and restores everything else', async () => {
    const { objects, env, target } = await copyVault();
    const pack = packKey(secondDataPack);
    await flipByte(objects, pack, randomInt(next, 0, (await blobArea(objects, pack)) - 1));

    const { report, text } = await check(env);
    expect(report.damagedPacks).toContain(secondDataPack);
    expect(report.problems.some((p) => p.pack === secondDataPack && p.severity === 'error')).toBe(
      true,
    );
    const damaged = affectedFiles(report, secondPoint);
    expect(damaged).toHaveLength(1);
    expect(damaged[0]).toMatch(/^b\//);
    expect(affectedFiles(report, firstPoint)).toEqual([]);
    expect(text).toContain(secondDataPack.slice(0, 12));
    expect(text).toContain(join(src, damaged[0]!));

    const { failed } = await restoreAndCompare(env, 'latest', target, asSecond, 3);
    expect(failed).toEqual(damaged);
    // The damaged file left behind must not pass for restored when the restore is run again.
    const again = await restoreAndCompare(env, 'latest', target, asSecond, 3);
    expect(again.failed).toEqual(damaged);
  }, 120_000);

  it('finds a truncated pack and restores what lies before the cut', async () => {
    const { objects, env, target } = await copyVault();
    const pack = packKey(secondDataPack);
    const bytes = await objects.read(pack);
    await objects.write(pack, bytes.subarray(0, Math.floor(bytes.byteLength / 2)));

    const structural = await sb.cli(['check'], env);
    expect(structural.code, describeRun(['check'], structural)).toBe(4);
    const { report, text } = await check(env);
    expect(report.damagedPacks).toContain(secondDataPack);
    const damaged = affectedFiles(report, secondPoint);
    expect(damaged.length).toBeGreaterThan(0);
    expect(damaged.length).toBeLessThan(8);
    expect(damaged.every((p) => p.startsWith('b/'))).toBe(true);
    expect(text).toContain(secondDataPack.slice(0, 12));

    const { failed } = await restoreAndCompare(env, 'latest', target, asSecond, 3);
    expect(failed).toEqual(damaged);
  }, 120_000);

  it('finds a deleted pack; the older point is unaffected', async () => {
    const { objects, env, target } = await copyVault();
    await objects.remove(packKey(secondDataPack));

    const { report, text } = await check(env);
    expect(report.problems).toContainEqual(
      expect.objectContaining({ severity: 'error', pack: secondDataPack }),
    );
    const bFiles = filePaths(asSecond)
      .filter((p) => p.startsWith('b/'))
      .sort();
    expect(affectedFiles(report, secondPoint)).toEqual(bFiles);
    expect(affectedFiles(report, firstPoint)).toEqual([]);
    expect(text).toContain(secondDataPack.slice(0, 12));

    const { failed } = await restoreAndCompare(env, 'latest', target, asSecond, 3);
    expect(failed).toEqual(bFiles);
    // None of their data could be read: none is left behind as an empty file.
    const out = restoredPath(target, src);
    for (const rel of bFiles) expect(existsSync(join(out, rel)), `${rel} left behind`).toBe(false);
    await restoreAndCompare(env, firstPoint, `${target}-first`, asFirst, 0);
  }, 120_000);

  it('finds a damaged index file and still restores everything from the pack headers', async () => {
    const { objects, env, target } = await copyVault();
    const index = `index/${firstIndex}`;
    await flipByte(objects, index, randomInt(next, 0, (await size(objects, index)) - 1));

    const { report, text } = await check(env);
    expect(
      report.problems.some((p) => p.severity === 'error' && p.message.includes(firstIndex)),
      JSON.stringify(report.problems, null, 2),
    ).toBe(true);
    expect(text).toContain(firstIndex.slice(0, 12));

    const { failed, stderr } = await restoreAndCompare(env, 'latest', target, asSecond, 3);
    expect(stderr).toContain(firstIndex.slice(0, 12));
    // The packs the damaged index listed describe themselves in their headers: nothing is lost.
    expect(failed).toEqual([]);
  }, 120_000);

  it('finds a damaged older point; the latest one restores completely', async () => {
    const { objects, env, target } = await copyVault();
    const point = `points/${firstPoint}`;
    await flipByte(objects, point, randomInt(next, 0, (await size(objects, point)) - 1));

    const { report, text } = await check(env);
    expect(report.problems).toContainEqual(
      expect.objectContaining({ severity: 'error', point: firstPoint }),
    );
    expect(text).toContain(firstPoint.slice(0, 12));

    const { failed } = await restoreAndCompare(env, 'latest', target, asSecond, [0, 3]);
    expect(failed).toEqual([]);
  }, 120_000);

  it('finds a damaged latest point; restore latest falls back to the newest intact one and says so', async () => {
    const { objects, env, target } = await copyVault();
    const point = `points/${secondPoint}`;
    await flipByte(objects, point, randomInt(next, 0, (await size(objects, point)) - 1));

    const { report, text } = await check(env);
    expect(report.problems).toContainEqual(
      expect.objectContaining({ severity: 'error', point: secondPoint }),
    );
    expect(text).toContain(secondPoint.slice(0, 12));

    const points = await sb.cli(['--json', 'points'], env);
    expect(points.code, describeRun(['points'], points)).toBe(3);
    expect(points.stderr).toContain(secondPoint.slice(0, 12));

    const { failed, summary, stderr } = await restoreAndCompare(env, 'latest', target, asFirst, 3);
    expect(summary.point).toBe(firstPoint);
    expect(failed).toEqual([]);
    expect(stderr).toContain(secondPoint.slice(0, 12));
  }, 120_000);
});
