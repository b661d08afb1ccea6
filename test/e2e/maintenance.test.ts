/**
 * The life cycle after backups: forget by policy, prune what no point uses, copy points to a
 * second vault with its own passphrase, and check both vaults — with the vaults on local disk, in
 * Azure Blob (Azurite) and in S3 (s3rver).
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  STORE_KINDS,
  startStore,
  type TestStore,
} from '../../src/backends/object-stores.testkit.js';
import {
  killStartedProcesses,
  describeRun,
  restoredPath,
  Sandbox,
  writeSeededTree,
  type BackupSummary,
  type CheckReport,
  type PointRow,
  type RunEnv,
} from './cli.testkit.js';
import { diffTrees, snapshotTree, type TreeSnapshot } from './tree.testkit.js';

describe.each(STORE_KINDS)('forget, prune and copy (vault: %s)', (kind) => {
  let store: TestStore | undefined;
  let sb: Sandbox;
  let src: string;
  const points: Array<{ summary: BackupSummary; source: TreeSnapshot }> = [];

  beforeAll(async () => {
    store = await startStore(kind, 'maintenance');
    sb = await Sandbox.create(`maintenance-${kind}`, { store });
    await sb.init();
    src = sb.path('src');
    for (let i = 0; i < 4; i += 1) {
      // Each backup replaces a directory of 3 MB: old points hold data the newer ones do not.
      rmSync(join(src, 'rotating'), { recursive: true, force: true });
      writeSeededTree(join(src, 'rotating'), {
        count: 3,
        minSize: 900_000,
        maxSize: 1_100_000,
        seed: 100 + i,
      });
      writeFileSync(join(src, 'counter.txt'), `backup ${i}\n`);
      const summary = await sb.backup([src]);
      points.push({ summary, source: snapshotTree(src) });
    }
  }, 120_000);

  afterAll(async () => {
    killStartedProcesses();
    await sb?.cleanup();
    await store?.stop();
  });

  async function checkClean(env: RunEnv = {}): Promise<void> {
    const r = await sb.cli(['--json', 'check', '--read-data'], env);
    expect(r.code, describeRun(['check', '--read-data'], r)).toBe(0);
    expect((JSON.parse(r.stdout) as CheckReport).problems).toEqual([]);
  }

  it('forgets by policy and prunes the data only forgotten points used', async () => {
    const forget = await sb.json<{ removed: Array<{ id: string }> }>([
      'forget',
      '--keep-last',
      '2',
    ]);
    expect(forget.removed.map((p) => p.id).sort()).toEqual(
      points
        .slice(0, 2)
        .map((p) => p.summary.id)
        .sort(),
    );
    const left = await sb.points();
    expect(left.map((p: PointRow) => p.id)).toEqual(points.slice(2).map((p) => p.summary.id));

    const prune = await sb.json<{ bytesFreed: number }>(['prune']);
    expect(prune.bytesFreed).toBeGreaterThan(4_000_000);
    await checkClean();
    for (const { summary, source } of points.slice(2)) {
      const target = sb.path(`restore-${summary.id.slice(0, 8)}`);
      await sb.ok(['restore', summary.id, '--target', target]);
      expect(diffTrees(source, snapshotTree(restoredPath(target, src)))).toEqual([]);
    }
  }, 120_000);

  it('copies points to another vault with its own passphrase, once', async () => {
    const other = sb.location('other-vault');
    const otherEnv: RunEnv = { HOLDFAST_VAULT: other, HOLDFAST_PASSWORD: 'the other vault' };
    await sb.ok(['init'], 0, otherEnv);
    const copyEnv: RunEnv = { HOLDFAST_TO_PASSWORD: 'the other vault' };
    const latest = points[points.length - 1]!;
    const copy = await sb.cli(['copy', 'latest', '--to', other], copyEnv);
    expect(copy.code, describeRun(['copy', 'latest'], copy)).toBe(0);

    const copied = await sb.json<PointRow[]>(['points'], 0, otherEnv);
    expect(copied).toHaveLength(1);
    expect(copied[0]!.paths).toEqual([src]);
    expect(copied[0]!.time).toBe(latest.summary.time);

    const again = await sb.cli(['copy', 'latest', '--to', other], copyEnv);
    expect(again.code, describeRun(['copy', 'latest'], again)).toBe(0);
    expect(await sb.json<PointRow[]>(['points'], 0, otherEnv)).toHaveLength(1);

    await checkClean(otherEnv);
    const target = sb.path('restore-copy');
    await sb.ok(['restore', 'latest', '--target', target], 0, otherEnv);
    expect(diffTrees(latest.source, snapshotTree(restoredPath(target, src)))).toEqual([]);
  }, 120_000);
});
