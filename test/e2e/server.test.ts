import { mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  startStore,
  STORE_KINDS,
  type TestStore,
} from '../../src/backends/object-stores.testkit.js';
import {
  expectExit,
  killStartedProcesses,
  parseJson,
  PASSPHRASE,
  run,
  writeSeededTree,
  writeTree,
} from './cli.testkit.js';
import {
  createDailyPolicy,
  ended,
  poll,
  type ServerProcess,
  startServer,
  waitForJob,
} from './server.testkit.js';
import { diffTrees, snapshotTree } from './tree.testkit.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const dirs: string[] = [];
const servers: ServerProcess[] = [];

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-server-e2e-'));
  dirs.push(dir);
  return dir;
}

afterEach(async () => {
  for (const server of servers.splice(0)) await server.stop().catch(() => undefined);
});
afterAll(() => {
  killStartedProcesses();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

interface PointView {
  id: string;
  time: string;
  tiers: string[];
  files: number;
  expiresAt: string;
}

/** The points of an item through the API: cheap enough to poll (one CLI run takes a second or two). */
async function apiPoints(server: ServerProcess, item: string): Promise<PointView[]> {
  const answer = await server.api('GET', `/api/items/${item}/points`);
  if (answer.status !== 200) throw new Error(`listing points failed: ${JSON.stringify(answer)}`);
  return answer.body.data;
}

/** Jobs not yet ended, through the API. */
async function unfinishedJobs(server: ServerProcess): Promise<unknown[]> {
  const answer = await server.api('GET', '/api/jobs?state=queued,running,waiting_retry');
  if (answer.status !== 200) throw new Error(`listing jobs failed: ${JSON.stringify(answer)}`);
  return answer.body.data;
}

// The same tests with the vault on local disk, in Azure Blob (Azurite) and in S3 (s3rver): each
// store is started once for its block, and each test keeps its vault under its own prefix.
describe.each(STORE_KINDS)('holdfast server driven through the CLI, vault on %s', (kind) => {
  let store: TestStore;
  beforeAll(async () => {
    store = await startStore(kind, 'holdfast-server');
  });
  afterAll(async () => {
    await store?.stop();
  });
  /** A test's vault location: a directory below `root`, or a prefix in the store's bucket or container. */
  const vaultAt = (root: string, name: string): string =>
    store.vault === undefined ? join(root, name) : `${store.vault}-${name}`;

  it('protects a tree, backs up on schedule and on demand, restores, soft-deletes, undeletes and resumes', async () => {
    const root = tempDir();
    const source = join(root, 'source');
    writeTree(source, {
      'a.txt': 'alpha\n',
      'deep/b.txt': 'bravo\n'.repeat(1000),
      'deep/er/c.bin': Buffer.alloc(200_000, 3),
    });
    const location = vaultAt(root, 'main');
    // Monday 2026-01-05 00:30 UTC; the clock moves only when the test says.
    const server = await startServer(join(root, 'data'), {
      fakeClock: '2026-01-05T00:30:00Z',
      env: store.env,
    });
    servers.push(server);
    const pass = { HOLDFAST_PASSWORD: PASSPHRASE };

    await server.json(['vault', 'create', 'main', '--location', location], pass);
    const policy = await server.json<{ scheduleText: string; retention: Record<string, number> }>([
      'policy',
      'create',
      'nightly',
      '--schedule',
      'daily 02:00',
      '--snapshot-days',
      '2',
      '--retain-daily',
      '7',
      '--retain-weekly',
      '4',
    ]);
    expect(policy.scheduleText).toBe('daily 02:00');
    const item = await server.json<{ nextRunAt: string; state: string }>([
      'protect',
      source,
      '--vault',
      'main',
      '--policy',
      'nightly',
      '--name',
      'docs',
    ]);
    expect(item).toMatchObject({ state: 'protected', nextRunAt: '2026-01-05T02:00:00.000Z' });

    // The schedule: nothing before 02:00, one backup after it.
    await server.advance(HOUR);
    expect(await server.list<PointView>(['points', 'docs'])).toEqual([]);
    await server.advance(HOUR);
    await poll(
      async () => (await apiPoints(server, 'docs')).some((p) => p.tiers.length === 2),
      60_000,
      'the scheduled backup',
    );
    const scheduled = await server.list<{ trigger: string; state: string }>([
      'job',
      'list',
      '--item',
      'docs',
    ]);
    expect(scheduled.map((j) => [j.trigger, j.state])).toEqual([['schedule', 'completed']]);

    // On demand, waiting with progress (a minute later: points are ordered by time).
    await server.advance(60_000);
    const firstTree = snapshotTree(source);
    writeTree(source, { 'new.txt': 'added later\n' });
    expectExit(
      ['backup-now', 'docs', '--wait'],
      await server.cli(['backup-now', 'docs', '--wait']),
      0,
    );
    const points = await server.list<PointView>(['points', 'docs']);
    expect(points).toHaveLength(2);
    expect(points.map((p) => p.tiers)).toEqual([
      ['snapshot', 'vault'],
      ['snapshot', 'vault'],
    ]);
    expect(points[1]?.files).toBe(4);

    // Restore the newest point and compare with the source.
    const target = join(root, 'restored');
    const restoreArgs = [
      'restore',
      'docs',
      '--point',
      'latest',
      '--target',
      target,
      '--verify',
      '--wait',
    ];
    expectExit(restoreArgs, await server.cli(restoreArgs), 0);
    expect(
      diffTrees(snapshotTree(source), snapshotTree(join(target, source)), { dirMtimes: false }),
    ).toEqual([]);
    // The older point, read from the vault itself (the snapshot tier holds it too): the tree
    // as it was before new.txt.
    const older = join(root, 'restored-older');
    const olderArgs = [
      ...['restore', 'docs', '--point', points[0]!.id, '--target', older],
      ...['--tier', 'vault', '--wait'],
    ];
    expectExit(olderArgs, await server.cli(olderArgs), 0);
    expect(diffTrees(firstTree, snapshotTree(join(older, source)), { dirMtimes: false })).toEqual(
      [],
    );

    // Stop with delete: soft-deleted with its purge date, no backup possible.
    const deleted = await server.json<{ state: string; purgeAt: string }>([
      'item',
      'stop',
      'docs',
      '--delete-data',
    ]);
    expect(deleted.state).toBe('soft_deleted');
    expect(deleted.purgeAt).toBe(
      new Date(Date.parse('2026-01-05T02:31:00Z') + 14 * DAY).toISOString(),
    );
    const refused = await server.cli(['backup-now', 'docs']);
    expect(refused.code, refused.stderr).not.toBe(0);
    expect(refused.stderr).toMatch(/STATE_CONFLICT/);
    // Soft-deleted points are kept, past their own expiry, until the purge date.
    await server.advance(10 * DAY);
    expect(await server.list<PointView>(['points', 'docs'])).toHaveLength(2);

    // Undelete, resume, back up again.
    expect((await server.json<{ state: string }>(['item', 'undelete', 'docs'])).state).toBe(
      'stopped',
    );
    expect((await server.json<{ state: string }>(['item', 'resume', 'docs'])).state).toBe(
      'protected',
    );
    expectExit(
      ['backup-now', 'docs', '--wait'],
      await server.cli(['backup-now', 'docs', '--wait']),
      0,
    );
    // Undelete made the item `stopped`: its second point, past its 7 days, was expired then.
    await poll(async () => (await unfinishedJobs(server)).length === 0, 60_000, 'the jobs to end');
    const after = await server.list<PointView>(['points', 'docs']);
    expect(after.length).toBeGreaterThanOrEqual(2);
    expect(after.at(-1)?.tiers).toEqual(['snapshot', 'vault']);

    // The audit trail names who did what; the passphrase is not in it.
    const audit = await server.list<{ actor: string; action: string; target: string }>(['audit']);
    expect(audit.map((e) => `${e.actor} ${e.action} ${e.target}`)).toContain(
      'admin stopProtection items/docs/stop',
    );
    expect(JSON.stringify(audit)).not.toContain(PASSPHRASE);

    // Metrics tell the same story.
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/^holdfast_jobs\{type="backup",state="completed"\} 3$/m);
    expect(metrics).toMatch(/^holdfast_vault_points\{vault="main"\} \d+$/m);
    expect(metrics).toMatch(/^holdfast_item_last_success_age_seconds\{item="docs"\} 0$/m);
    expect(metrics).toMatch(
      /^holdfast_job_duration_seconds_count\{type="backup",state="completed"\} 3$/m,
    );

    // The disaster-recovery path: the bare CLI reads the vault with the operator's passphrase.
    const direct = await run(['points', '--json'], {
      HOLDFAST_VAULT: location,
      ...pass,
      ...store.env,
    });
    const vaultPoints = parseJson<Array<{ tags: string[] }>>(
      ['points'],
      expectExit(['points'], direct, 0),
    );
    expect(vaultPoints).toHaveLength(after.length);
    expect(vaultPoints.every((p) => p.tags.some((t) => t.startsWith('item:')))).toBe(true);
  }, 180_000);

  it('after kill -9 during a backup, the job shows interrupted, is retried once, and the vault checks clean', async () => {
    const root = tempDir();
    const source = join(root, 'source');
    writeSeededTree(source, { count: 12, minSize: 15 << 20, maxSize: 25 << 20, seed: 7 });
    const location = vaultAt(root, 'killed');
    const dataDir = join(root, 'data');
    let server = await startServer(dataDir, { env: store.env });
    servers.push(server);
    const pass = { HOLDFAST_PASSWORD: PASSPHRASE };
    await server.json(['vault', 'create', 'main', '--location', location], pass);
    await server.json([
      'policy',
      'create',
      'weekly',
      '--schedule',
      'weekly sun 03:00',
      '--retain-daily',
      '30',
    ]);
    await server.json([
      'protect',
      source,
      '--vault',
      'main',
      '--policy',
      'weekly',
      '--name',
      'big',
    ]);
    const job = await server.json<{ id: string }>(['backup-now', 'big']);
    const running = await waitForJob(
      server,
      job.id,
      (j) =>
        j.state === 'running' &&
        j.phases.some((p: any) => p.state === 'running' && p.progress?.bytes > 0),
      60_000,
    );
    const killed = await server.kill9();
    expect(killed.signal).toBe('SIGKILL');
    servers.pop();

    server = await startServer(dataDir, { env: store.env });
    servers.push(server);
    const final = await waitForJob(server, job.id, ended, 300_000);
    expect(final.state, JSON.stringify(final)).toBe('completed');
    expect(final.attempts.map((a: any) => a.outcome)).toEqual(['interrupted']);
    expect(final.retryCount).toBe(1);
    // One point, in both tiers — never a second one from the retry.
    const points = await server.list<PointView>(['points', 'big']);
    expect(points).toHaveLength(1);
    expect(points[0]?.tiers).toEqual(['snapshot', 'vault']);
    const vaultEnv = { HOLDFAST_VAULT: location, ...pass, ...store.env };
    const direct = await run(['points', '--json'], vaultEnv);
    expect(parseJson<unknown[]>(['points'], expectExit(['points'], direct, 0))).toHaveLength(1);
    const check = await run(['check', '--read-data'], vaultEnv);
    expectExit(['check', '--read-data'], check, 0);
    // The snapshot store, read with the server's own key file, holds exactly that one point too.
    const snapshots = join(dataDir, 'snapshots');
    const [snapshotStore] = readdirSync(snapshots);
    const [key] = readdirSync(join(dataDir, 'keys'));
    const storeArgs = [
      '--vault',
      join(snapshots, snapshotStore!),
      '--key-file',
      join(dataDir, 'keys', key!),
    ];
    const storePoints = await run([...storeArgs, 'points', '--json']);
    expect(parseJson<unknown[]>(['points'], expectExit(['points'], storePoints, 0))).toHaveLength(
      1,
    );
    expectExit(['check'], await run([...storeArgs, 'check']), 0);
    void running;
  }, 360_000);

  it('on SIGTERM during a backup, stops gracefully and retries the job at the next start', async () => {
    const root = tempDir();
    const source = join(root, 'source');
    writeSeededTree(source, { count: 12, minSize: 15 << 20, maxSize: 25 << 20, seed: 8 });
    const dataDir = join(root, 'data');
    let server = await startServer(dataDir, { env: store.env });
    servers.push(server);
    const pass = { HOLDFAST_PASSWORD: PASSPHRASE };
    // On local disk the vault takes the server's default place (docs/control-plane.md).
    const location =
      store.vault === undefined ? join(dataDir, 'vaults', 'main') : vaultAt(root, 'stopped');
    const where = store.vault === undefined ? [] : ['--location', location];
    await server.json(['vault', 'create', 'main', ...where], pass);
    await createDailyPolicy(server);
    await server.json(['protect', source, '--vault', 'main', '--policy', 'p', '--name', 'big']);
    const job = await server.json<{ id: string }>(['backup-now', 'big']);
    await waitForJob(server, job.id, (j) => j.state === 'running', 60_000);
    const stopped = await server.stop();
    servers.pop();
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.stderr).toMatch(/stopped/);
    server = await startServer(dataDir, { env: store.env });
    servers.push(server);
    const final = await waitForJob(server, job.id, ended, 300_000);
    expect(final.state, JSON.stringify(final)).toBe('completed');
    expect(final.attempts.map((a: any) => a.outcome)).toEqual(['interrupted']);
    expect(await server.list<PointView>(['points', 'big'])).toHaveLength(1);
    // What the aborted attempt left in the vault does not disturb its structure.
    expectExit(
      ['check'],
      await run(['check'], { HOLDFAST_VAULT: location, ...pass, ...store.env }),
      0,
    );
  }, 360_000);
});

describe('a geo-redundant vault on local directories, through the server', () => {
  it('keeps a geo-redundant vault restorable from its secondary when the primary is lost', async () => {
    const root = tempDir();
    const source = join(root, 'source');
    writeTree(source, { 'a.txt': 'alpha\n', 'b/c.bin': Buffer.alloc(100_000, 5) });
    const primary = join(root, 'site-a');
    const secondary = join(root, 'site-b');
    const server = await startServer(join(root, 'data'));
    servers.push(server);
    const pass = { HOLDFAST_PASSWORD: PASSPHRASE };
    const vault = await server.json<{ redundancy: string; secondaryLocation: string }>(
      [
        'vault',
        'create',
        'geo',
        '--location',
        primary,
        '--redundancy',
        'grs',
        '--secondary',
        secondary,
      ],
      pass,
    );
    expect(vault).toMatchObject({ redundancy: 'grs', secondaryLocation: secondary });
    await createDailyPolicy(server);
    await server.json(['protect', source, '--vault', 'geo', '--policy', 'p', '--name', 'docs']);
    expectExit(['backup-now'], await server.cli(['backup-now', 'docs', '--wait']), 0);
    await poll(
      async () =>
        (await server.list<unknown>(['job', 'list', '--type', 'replicate', '--state', 'completed']))
          .length === 1,
      60_000,
      'the replication',
    );
    const lag = await server.json<{ replication: { objectsBehind: number; lagSeconds: number } }>([
      'vault',
      'replication',
      'geo',
    ]);
    expect(lag.replication).toMatchObject({ objectsBehind: 0, lagSeconds: 0 });
    // Site A is lost. The secondary alone serves the restore, and the bare CLI can read it too.
    renameSync(primary, `${primary}.lost`);
    const target = join(root, 'restored');
    const args = [
      'restore',
      'docs',
      '--point',
      'latest',
      '--target',
      target,
      '--tier',
      'vault',
      '--from',
      'secondary',
      '--wait',
    ];
    expectExit(args, await server.cli(args), 0);
    expect(
      diffTrees(snapshotTree(source), snapshotTree(join(target, source)), { dirMtimes: false }),
    ).toEqual([]);
    expectExit(
      ['check'],
      await run(['check', '--read-data'], { HOLDFAST_VAULT: secondary, ...pass }),
      0,
    );
    expect(await server.list<PointView>(['points', 'docs', '--from', 'secondary'])).toHaveLength(1);
    const verifyArgs = [
      'vault',
      'verify',
      'geo',
      '--from',
      'secondary',
      '--read-data',
      '100',
      '--wait',
    ];
    expectExit(verifyArgs, await server.cli(verifyArgs), 0);
    const failedOver = await server.json<{ location: string }>(['vault', 'failover', 'geo']);
    expect(failedOver.location).toBe(secondary);
    expectExit(['backup-now'], await server.cli(['backup-now', 'docs', '--wait']), 0);
    expect(await server.list<PointView>(['points', 'docs'])).toHaveLength(2);
  }, 120_000);
});
