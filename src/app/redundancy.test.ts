import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../core/index.js';
import { startWebhookReceiver, type WebhookReceiver } from '../jobs/notify-receivers.testkit.js';
import { ControlPlane } from './control-plane.js';

const dirs: string[] = [];
const receivers: WebhookReceiver[] = [];
const planes: ControlPlane[] = [];
afterEach(async () => {
  for (const plane of planes.splice(0)) await plane.stop().catch(() => undefined);
  for (const receiver of receivers.splice(0)) await receiver.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Every object of a vault directory but its locks: name → content. */
function objects(root: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const entry of readdirSync(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const name = relative(root, join(entry.parentPath, entry.name));
    if (!name.startsWith('locks/')) out.set(name, readFileSync(join(root, name)).toString('hex'));
  }
  return out;
}

async function setup() {
  const root = mkdtempSync(join(tmpdir(), 'holdfast-grs-'));
  dirs.push(root);
  const source = join(root, 'source');
  mkdirSync(source);
  writeFileSync(join(source, 'a.txt'), 'alpha\n');
  const clock = new ManualClock(Date.UTC(2026, 0, 5, 0, 30));
  const plane = await ControlPlane.open({
    dataDir: join(root, 'data'),
    clock,
    retry: { baseDelayMs: 60_000, maxDelayMs: 60_000 },
    replicationLagAlertSeconds: 40,
  });
  planes.push(plane);
  const primary = join(root, 'primary');
  const secondary = join(root, 'secondary');
  const vault = await plane.vaults.create({
    name: 'geo',
    location: primary,
    passphrase: 'a long test passphrase',
    redundancy: 'grs',
    secondaryLocation: secondary,
  });
  await plane.policies.create({ name: 'p', schedule: 'daily 02:00', retention: { daily: 7 } });
  await plane.items.protect({ name: 'docs', paths: [source], vault: 'geo', policy: 'p' });
  return { root, source, clock, plane, primary, secondary, vault };
}

describe('geo-redundant vaults', () => {
  it('start as a full copy, replicate every backup object for object, and check the copy daily', async () => {
    const { plane, clock, primary, secondary, vault } = await setup();
    expect(vault.redundancy).toBe('grs');
    expect(objects(secondary)).toEqual(objects(primary));
    await plane.items.backupNow('docs');
    await plane.settle();
    const jobs = await plane.jobs.list({ type: 'replicate' });
    expect(jobs.map((j) => j.state)).toEqual(['completed']);
    expect(objects(secondary)).toEqual(objects(primary));
    expect((await plane.vaults.replication('geo')).replication).toMatchObject({
      lagSeconds: 0,
      objectsBehind: 0,
    });
    await expect(plane.vaults.update('geo', { redundancy: 'lrs' })).rejects.toThrow(
      /already holds recovery points/,
    ); // Once a day the secondary copy is checked: structure, and a tenth of its packs read.
    clock.advance(24 * 3_600_000);
    await plane.settle();
    const checks = await plane.jobs.list({ type: 'verify' });
    // One check right after the first replication, the next a day later.
    expect(checks.map((j) => [j.params['from'], j.state])).toEqual([
      ['secondary', 'completed'],
      ['secondary', 'completed'],
    ]);
    expect((await plane.vaults.show('geo')).replication?.lastVerifiedAt).toBe(
      new Date(clock.now()).toISOString(),
    );
  });

  it('reports lag while the secondary is unreachable, alerts once past the threshold, and catches up', async () => {
    const { plane, clock, secondary } = await setup();
    const hook = await startWebhookReceiver();
    receivers.push(hook);
    await plane.notifications.put({
      webhooks: [
        {
          name: 'ops',
          url: hook.url,
          secret: 'a-webhook-secret-of-some-length',
          events: ['vault.replication_lagging'],
        },
      ],
    });
    // The secondary's place is taken by a plain file: every write to it fails.
    renameSync(secondary, `${secondary}.away`);
    writeFileSync(secondary, 'not a directory');
    await plane.items.backupNow('docs');
    await plane.settle();
    clock.advance(30_000);
    const behind = await plane.vaults.replication('geo');
    expect(behind.replication?.objectsBehind).toBeGreaterThan(0);
    expect(behind.replication?.bytesBehind).toBeGreaterThan(0);
    expect(behind.replication?.lagSeconds).toBe(30);
    expect((await plane.jobs.list({ type: 'replicate' }))[0]?.state).toBe('waiting_retry');
    // 30 s behind: under the 40 s threshold, no alert. 50 s: one alert, and only one.
    await plane.settle();
    expect(hook.requests).toHaveLength(0);
    clock.advance(20_000);
    await plane.settle();
    for (let i = 0; i < 100 && hook.requests.length === 0; i++)
      await new Promise((r) => setTimeout(r, 50));
    clock.advance(5_000);
    await plane.settle();
    await new Promise((r) => setTimeout(r, 200));
    expect(hook.requests).toHaveLength(1);
    const payload = JSON.parse(hook.requests[0]!.body.toString('utf8')) as {
      event: string;
      job: Record<string, unknown>;
    };
    expect(payload.event).toBe('vault.replication_lagging');
    expect(payload.job).toMatchObject({ vaultName: 'geo', state: 'lagging' });
    expect(String(payload.job['message'])).toMatch(/behind for 50 s/);
    rmSync(secondary);
    renameSync(`${secondary}.away`, secondary);
    clock.advance(60_000);
    await plane.settle();
    expect((await plane.vaults.replication('geo')).replication).toMatchObject({
      lagSeconds: 0,
      objectsBehind: 0,
    });
  });

  it('restores from the secondary when the primary is gone, fails over, and re-protects', async () => {
    const { root, source, clock, plane, primary, secondary } = await setup();
    await plane.items.backupNow('docs');
    await plane.settle();
    // A second backup never reaches the secondary (unreachable when it is replicated).
    renameSync(secondary, `${secondary}.away`);
    writeFileSync(secondary, 'not a directory');
    writeFileSync(join(source, 'late.txt'), 'late\n');
    clock.advance(60_000);
    await plane.items.backupNow('docs');
    await plane.settle();
    rmSync(secondary);
    renameSync(`${secondary}.away`, secondary);
    renameSync(primary, `${primary}.lost`);
    const measured = (await plane.vaults.replication('geo')).replication;
    expect(measured?.measureError).toMatch(/holds no vault/);
    expect(measured?.objectsBehind).toBeGreaterThan(0);
    // `latest` from the secondary is the newest point the copy holds: the first one.
    expect((await plane.items.points('docs', 'secondary')).length).toBe(1);
    const target = join(root, 'restored');
    const restore = await plane.items.restore('docs', {
      point: 'latest',
      target,
      tier: 'vault',
      from: 'secondary',
    });
    await plane.settle();
    const done = await plane.jobs.show(restore.id);
    expect(done.state, JSON.stringify(done)).toBe('completed');
    expect(done.result?.['tier']).toBe('secondary');
    expect(readFileSync(join(target, source, 'a.txt'), 'utf8')).toBe('alpha\n');
    expect(existsSync(join(target, source, 'late.txt'))).toBe(false);

    const failed = await plane.vaults.failover('geo');
    // The point the copy never got keeps only its local snapshot tier.
    expect((await plane.items.points('docs')).map((p) => p.tiers)).toEqual([
      ['snapshot', 'vault'],
      ['snapshot'],
    ]);
    const replicateJobs = (await plane.jobs.list({ type: 'replicate' })).length;
    expect(failed.location).toBe(secondary);
    expect(failed.secondaryLocation).toBe(primary);
    expect(failed.replication).toMatchObject({ paused: true, failedOverFrom: primary });
    writeFileSync(join(source, 'b.txt'), 'bravo\n');
    const backup = await plane.items.backupNow('docs');
    await plane.settle();
    expect((await plane.jobs.show(backup.id)).state).toBe('completed');
    // Nothing is queued to copy while failed over (the old primary is still away), and the
    // pass left waiting before the failover does nothing when it runs.
    clock.advance(3_600_000);
    await plane.settle();
    const replicates = await plane.jobs.list({ type: 'replicate' });
    expect(replicates.length).toBe(replicateJobs);
    const interrupted = replicates.find((job) => job.attempts.length > 0);
    expect(interrupted?.result).toMatchObject({ skipped: 'replication is paused' });
    renameSync(`${primary}.lost`, primary);
    await plane.vaults.reprotect('geo');
    await plane.settle();
    expect(objects(primary)).toEqual(objects(secondary));
    expect((await plane.items.points('docs')).length).toBe(3);
  });
});
