/**
 * Several processes on one vault: two backups at once, and a prune started while they run. The
 * backups share the lock; prune must wait for them. The dangerous case is built in: one backup
 * reuses data of a forgotten point, which a prune that did not wait would delete under it. The
 * vault is on local disk, in Azure Blob (Azurite) and in S3 (s3rver): locks are objects too.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  STORE_KINDS,
  startStore,
  type TestStore,
} from '../../src/backends/object-stores.testkit.js';
import {
  describeRun,
  killStartedProcesses,
  restoredPath,
  Sandbox,
  sleep,
  waitFor,
  writeSeededTree,
  type BackupSummary,
  type CheckReport,
  type PointRow,
  type RunResult,
} from './cli.testkit.js';
import { diffTrees, snapshotTree } from './tree.testkit.js';

describe.each(STORE_KINDS)('concurrent commands on one vault (vault: %s)', (kind) => {
  let store: TestStore | undefined;
  let sb: Sandbox;

  beforeAll(async () => {
    store = await startStore(kind, 'concurrency');
    sb = await Sandbox.create(`concurrency-${kind}`, { store });
    await sb.init();
  });

  afterAll(async () => {
    killStartedProcesses();
    await sb?.cleanup();
    await store?.stop();
  });

  it('runs two backups at once and a prune that waits for them', async () => {
    const x = sb.path('x');
    const y = sb.path('y');
    writeSeededTree(x, { count: 8, minSize: 1_500_000, maxSize: 2_500_000, seed: 81 });
    // Data only the forgotten point has: what prune should free.
    writeSeededTree(join(x, 'zz-old'), {
      count: 8,
      minSize: 2_000_000,
      maxSize: 3_000_000,
      seed: 82,
    });
    writeSeededTree(y, { count: 8, minSize: 1_500_000, maxSize: 2_500_000, seed: 83 });
    const forgotten = await sb.backup([x]);
    await sb.ok(['forget', forgotten.id]);
    rmSync(join(x, 'zz-old'), { recursive: true });
    const expectedX = snapshotTree(x);
    const expectedY = snapshotTree(y);

    const locks = (): Promise<string[]> => sb.vaultFiles('locks');
    const ended = new Map<string, number>();
    const track = (name: string, p: Promise<RunResult>): Promise<RunResult> =>
      p.then((r) => {
        ended.set(name, Date.now());
        return r;
      });
    // One backup at a time runs until its shared lock appears and is then held still, so that
    // prune surely meets both; a backup lasts far longer than the few milliseconds between
    // the lock appearing and the stop.
    const holdAtLock = async (args: string[], name: string, lockCount: number) => {
      const started = sb.spawn(args);
      const result = track(name, started.result);
      const locked = await waitFor(
        async () => (await locks()).length >= lockCount || ended.has(name),
        60_000,
        1,
      );
      started.child.kill('SIGSTOP');
      expect(locked && !ended.has(name), `backup ${name} should hold a lock while running`).toBe(
        true,
      );
      return { child: started.child, result };
    };
    const backupX = await holdAtLock(['--json', 'backup', '--force', x], 'x', 1);
    const backupY = await holdAtLock(['--json', 'backup', y], 'y', 2);
    const resultX = backupX.result;
    const resultY = backupY.result;

    const impatient = await sb.cli(['prune', '--lock-wait', '0']);
    expect(impatient.code, describeRun(['prune', '--lock-wait', '0'], impatient)).toBe(1);
    expect(impatient.stderr).toContain('VAULT_LOCKED');

    const prune = sb.spawn(['--json', 'prune', '--lock-wait', '300']);
    const resultPrune = track('prune', prune.result);
    await sleep(2_500);
    expect(ended.has('prune'), 'prune ended while backups held their locks').toBe(false);
    backupX.child.kill('SIGCONT');
    backupY.child.kill('SIGCONT');

    const [rx, ry, rp] = await Promise.all([resultX, resultY, resultPrune]);
    expect(rx.code, describeRun(['backup', x], rx)).toBe(0);
    expect(ry.code, describeRun(['backup', y], ry)).toBe(0);
    expect(rp.code, describeRun(['prune'], rp)).toBe(0);
    expect(ended.get('prune')!).toBeGreaterThanOrEqual(Math.max(ended.get('x')!, ended.get('y')!));
    const pointX = JSON.parse(rx.stdout) as BackupSummary;
    const pointY = JSON.parse(ry.stdout) as BackupSummary;
    // The forced backup of x found all its data already in the vault (the forgotten point's).
    expect(pointX.newBytes).toBeLessThan(64 * 1024);
    const report = JSON.parse(rp.stdout) as { bytesFreed: number };
    expect(report.bytesFreed).toBeGreaterThan(10_000_000);
    expect(await locks()).toEqual([]);

    const check = await sb.cli(['--json', 'check', '--read-data']);
    expect(check.code, describeRun(['check', '--read-data'], check)).toBe(0);
    expect((JSON.parse(check.stdout) as CheckReport).problems).toEqual([]);

    const points = await sb.points();
    expect(points.map((p: PointRow) => p.id).sort()).toEqual([pointX.id, pointY.id].sort());
    for (const [point, dir, expected] of [
      [pointX.id, x, expectedX],
      [pointY.id, y, expectedY],
    ] as const) {
      const target = sb.path(`restore-${point.slice(0, 8)}`);
      await sb.ok(['restore', point, '--target', target]);
      expect(diffTrees(expected, snapshotTree(restoredPath(target, dir)))).toEqual([]);
    }
  }, 300_000);
});
