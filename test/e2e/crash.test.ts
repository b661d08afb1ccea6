/**
 * Crash safety: backups killed with SIGKILL at seeded moments — by time, right after the n-th
 * pack, right after an index file, right after the point — over a ~80 MB tree. After every
 * kill the vault must check clean; at the end a backup completes, reuses what the killed runs
 * left indexed, the data reads back, and every point that exists restores in full. The vault is
 * on local disk, in Azure Blob (Azurite) and in S3 (s3rver); the kill triggers poll its listing.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  STORE_KINDS,
  startStore,
  type StoreKind,
  type TestStore,
} from '../../src/backends/object-stores.testkit.js';
import {
  describeRun,
  killStartedProcesses,
  prng,
  randomInt,
  restoredPath,
  Sandbox,
  sleep,
  writeSeededFile,
  writeSeededTree,
  writeTree,
  type BackupSummary,
  type CheckReport,
  type RunResult,
} from './cli.testkit.js';
import { diffTrees, snapshotTree, type TreeSnapshot } from './tree.testkit.js';

const SEED = 0xc4a5_0001;
/**
 * Killed runs per kind of moment. On local disk every kind comes several times. A run on an
 * object store takes a few times longer (every pack and listing is an HTTP request to an
 * emulator) and what it tests there is the same engine over another backend, so object stores
 * get about a third of the runs, still every kind of moment: the suite must stay within its CI
 * time.
 */
const MOMENTS: Record<StoreKind, Record<Trigger['kind'], number>> = {
  local: { time: 6, packs: 5, index: 3, point: 2 },
  azure: { time: 2, packs: 2, index: 1, point: 1 },
  s3: { time: 2, packs: 2, index: 1, point: 1 },
};
/**
 * How long a run is taken to last until one completes (the kills by time are fractions of it):
 * a run that uploads through an emulator lasts a few times longer than one on local disk, and
 * kills by time should fall within its uploads there too, not only in its start.
 */
const FIRST_DURATION_MS: Record<StoreKind, number> = { local: 1500, azure: 4000, s3: 4000 };
const CHURN_FILES = 4;
const CHURN_SIZE = 600_000;

/** When a run is killed. */
type Trigger =
  /** A fraction of the last completed run's duration (runs get faster once data is stored). */
  | { readonly kind: 'time'; readonly fraction: number }
  | { readonly kind: 'packs'; readonly count: number; readonly jitterMs: number }
  | { readonly kind: 'index'; readonly jitterMs: number }
  | { readonly kind: 'point'; readonly jitterMs: number };

/** A seeded schedule with `counts` moments of each kind, in seeded order. */
function schedule(next: () => number, counts: Record<Trigger['kind'], number>): Trigger[] {
  const kinds: Array<Trigger['kind']> = [
    ...Array<'time'>(counts.time).fill('time'),
    ...Array<'packs'>(counts.packs).fill('packs'),
    ...Array<'index'>(counts.index).fill('index'),
    ...Array<'point'>(counts.point).fill('point'),
  ];
  for (let i = kinds.length - 1; i > 0; i -= 1) {
    const j = randomInt(next, 0, i);
    [kinds[i], kinds[j]] = [kinds[j]!, kinds[i]!];
  }
  return kinds.map((kind): Trigger => {
    switch (kind) {
      case 'time':
        return { kind, fraction: next() * 0.9 };
      case 'packs':
        // Later runs store little new data: one data pack and one tree pack at the end.
        return { kind, count: randomInt(next, 1, 2), jitterMs: randomInt(next, 0, 20) };
      default:
        // The index, then the point, are written in the last moments of a run.
        return { kind, jitterMs: randomInt(next, 0, 3) };
    }
  });
}

function describeTrigger(t: Trigger): string {
  switch (t.kind) {
    case 'time':
      return `after ${Math.round(t.fraction * 100)}% of the last run's time`;
    case 'packs':
      return `after pack ${t.count} (+${t.jitterMs} ms)`;
    default:
      return `after the ${t.kind} file (+${t.jitterMs} ms)`;
  }
}

describe.each(STORE_KINDS)('backups killed at random moments (vault: %s)', (kind) => {
  let store: TestStore | undefined;
  let sb: Sandbox;
  let src: string;
  let treeBytes = 0;

  beforeAll(async () => {
    store = await startStore(kind, 'crash');
    sb = await Sandbox.create(`crash-${kind}`, { store });
    await sb.init();
    src = sb.path('src');
    treeBytes += writeSeededTree(join(src, 'stable'), {
      count: 28,
      minSize: 2_500_000,
      maxSize: 3_000_000,
      seed: 91,
    });
    const small: Record<string, string> = {};
    const next = prng(92);
    for (let i = 0; i < 300; i += 1) {
      small[`small/d${i % 10}/f${i}.txt`] = `line ${i}\n`.repeat(randomInt(next, 1, 400));
    }
    writeTree(src, small);
    treeBytes += Object.values(small).reduce((n, s) => n + s.length, 0);
    mkdirSync(join(src, 'churn'));
    for (let i = 0; i < CHURN_FILES; i += 1) {
      writeSeededFile(join(src, 'churn', `c${i}.bin`), CHURN_SIZE, `churn-initial-${i}`);
    }
    treeBytes += CHURN_FILES * CHURN_SIZE;
  }, 120_000);

  afterAll(async () => {
    killStartedProcesses();
    await sb?.cleanup();
    await store?.stop();
  });

  /** Starts a backup and kills it with SIGKILL when `trigger` fires; resolves with its result. */
  async function killedBackup(
    trigger: Trigger,
    force: boolean,
    lastDurationMs: number,
  ): Promise<{ result: RunResult; killed: boolean }> {
    const packs0 = (await sb.packs()).length;
    const index0 = (await sb.vaultFiles('index')).length;
    const points0 = (await sb.pointFiles()).length;
    const started = Date.now();
    const run = sb.spawn(['--json', 'backup', ...(force ? ['--force'] : []), src]);
    let done = false;
    const result = run.result.then((r) => {
      done = true;
      return r;
    });
    const fired = async (): Promise<boolean> => {
      switch (trigger.kind) {
        case 'time':
          return Date.now() - started >= trigger.fraction * lastDurationMs;
        case 'packs':
          return (await sb.packs()).length - packs0 >= trigger.count;
        case 'index':
          return (await sb.vaultFiles('index')).length > index0;
        case 'point':
          return (await sb.pointFiles()).length > points0;
      }
    };
    while (!done && !(await fired())) await sleep(2);
    if (!done && trigger.kind !== 'time') await sleep(trigger.jitterMs);
    let killed = false;
    if (!done) killed = run.child.kill('SIGKILL');
    const r = await result;
    return { result: r, killed: killed && r.signal === 'SIGKILL' };
  }

  it('keeps the vault consistent through kill -9 at any moment', async () => {
    const next = prng(SEED);
    const plan = schedule(next, MOMENTS[kind]);
    let expected: TreeSnapshot = snapshotTree(src);
    /**
     * Each run's start and the source as it saw it. A point is the run's whose start last
     * precedes the point's own time (the moment its backup began): listing the points after a
     * run would not do, as an upload a killed run had fully sent can still complete on an object
     * store's server after the kill (whole, since uploads are atomic there) and appear later.
     */
    const runs: Array<{ startedAt: number; source: TreeSnapshot }> = [];
    const sourceOf = (point: { time: string }): TreeSnapshot | undefined =>
      runs.findLast((run) => run.startedAt <= Date.parse(point.time))?.source;
    const log: string[] = [];
    let killedRuns = 0;
    let lastDurationMs = FIRST_DURATION_MS[kind];

    for (const [i, trigger] of plan.entries()) {
      // Every run has something new to store: one churn file gets new content.
      writeSeededFile(join(src, 'churn', `c${i % CHURN_FILES}.bin`), CHURN_SIZE, `churn-${i}`);
      expected = snapshotTree(src);
      const force = next() < 0.3;
      runs.push({ startedAt: Date.now(), source: expected });
      const { result, killed } = await killedBackup(trigger, force, lastDurationMs);
      const args = ['backup', src];
      if (!killed) expect(result.code, describeRun(args, result)).toBe(0);
      killedRuns += killed ? 1 : 0;
      if (!killed) lastDurationMs = result.durationMs;
      log.push(
        `run ${i}: ${describeTrigger(trigger)}${force ? ' --force' : ''} → ${killed ? 'killed' : 'completed'} after ${result.durationMs} ms`,
      );

      const check = await sb.cli(['--json', 'check']);
      expect(check.code, `${log.join('\n')}\n${describeRun(['check'], check)}`).toBe(0);
      const report = JSON.parse(check.stdout) as CheckReport;
      expect(report.problems.filter((p) => p.severity !== 'warning')).toEqual([]);
    }
    // Moments after the index or the point often come too late: the run has completed.
    expect(killedRuns, log.join('\n')).toBeGreaterThanOrEqual(plan.length / 2);

    runs.push({ startedAt: Date.now(), source: expected });
    const final = await sb.backup([src]);
    log.push(`final: newBytes ${final.newBytes} of ${treeBytes}`);
    // Data the killed runs uploaded and indexed is not stored again.
    expect(final.newBytes, log.join('\n')).toBeLessThan(treeBytes / 2);

    const check = await sb.cli(['--json', 'check', '--read-data']);
    expect(check.code, describeRun(['check', '--read-data'], check)).toBe(0);
    expect((JSON.parse(check.stdout) as CheckReport).ok).toBe(true);

    // Every point that exists is complete: it restores exactly the tree its run saw.
    const points = await sb.points();
    expect(points.length).toBeGreaterThan(0);
    for (const point of points) {
      const source = sourceOf(point);
      expect(source, `point ${point.id} was not made by any run`).toBeDefined();
      const target = sb.path(`restore-${point.id.slice(0, 12)}`);
      const restore = await sb.cli(['restore', point.id, '--target', target]);
      expect(restore.code, describeRun(['restore', point.id], restore)).toBe(0);
      expect(diffTrees(source!, snapshotTree(restoredPath(target, src)))).toEqual([]);
    }
  }, 600_000);
});

describe.each(STORE_KINDS)('an interrupted backup (vault: %s)', (kind) => {
  let store: TestStore | undefined;
  let sb: Sandbox;

  beforeAll(async () => {
    store = await startStore(kind, 'interrupt');
    sb = await Sandbox.create(`interrupt-${kind}`, { store });
  });

  afterAll(async () => {
    killStartedProcesses();
    await sb?.cleanup();
    await store?.stop();
  });

  for (const signal of ['SIGINT', 'SIGKILL'] as const) {
    it(`leaves no point after ${signal}, and the next backup reuses its indexed data`, async () => {
      const env = { HOLDFAST_VAULT: sb.location(`vault-${signal}`) };
      await sb.ok(['init'], 0, env);
      const vault = env.HOLDFAST_VAULT;
      const src = sb.path(`src-${signal}`);
      const bytes = writeSeededTree(src, {
        count: 30,
        minSize: 2_500_000,
        maxSize: 3_000_000,
        seed: 95,
      });
      const run = sb.spawn(['backup', src], env);
      let done = false;
      void run.result.then(() => (done = true));
      // Interrupt after the first index file: some of the uploaded data is indexed by then.
      while (!done && (await sb.vaultFiles('index', vault)).length === 0) await sleep(2);
      run.child.kill(signal);
      const r = await run.result;
      if (signal === 'SIGINT') {
        expect(r.code, describeRun(['backup', src], r)).toBe(130);
        expect(await sb.vaultFiles('locks', vault)).toEqual([]);
      } else {
        expect(r.signal, describeRun(['backup', src], r)).toBe('SIGKILL');
      }
      expect(await sb.pointFiles(vault)).toEqual([]);

      const check = await sb.cli(['--json', 'check'], env);
      expect(check.code, describeRun(['check'], check)).toBe(0);
      const next = await sb.json<BackupSummary>(['backup', src], 0, env);
      expect(next.newBytes).toBeLessThan(bytes / 2);
      const target = sb.path(`restore-${signal}`);
      await sb.ok(['restore', 'latest', '--target', target], 0, env);
      expect(diffTrees(snapshotTree(src), snapshotTree(restoredPath(target, src)))).toEqual([]);
    }, 300_000);
  }
});
