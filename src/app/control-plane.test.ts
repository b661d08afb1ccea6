import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../core/index.js';
import { ControlPlane } from './control-plane.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const dirs: string[] = [];
const planes: ControlPlane[] = [];
afterEach(async () => {
  for (const plane of planes.splice(0)) await plane.stop().catch(() => undefined);
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function setup() {
  const root = mkdtempSync(join(tmpdir(), 'holdfast-plane-'));
  dirs.push(root);
  const source = join(root, 'source');
  mkdirSync(join(source, 'sub'), { recursive: true });
  writeFileSync(join(source, 'a.txt'), 'alpha\n');
  writeFileSync(join(source, 'sub', 'b.bin'), Buffer.alloc(300_000, 7));
  // Monday 2026-01-05 00:30 UTC.
  const clock = new ManualClock(Date.UTC(2026, 0, 5, 0, 30));
  const plane = await ControlPlane.open({
    dataDir: join(root, 'data'),
    clock,
    retry: { baseDelayMs: 60_000, maxDelayMs: 60_000 },
  });
  planes.push(plane);
  await plane.vaults.create({ name: 'main', passphrase: 'a long test passphrase' });
  await plane.policies.create({
    name: 'nightly',
    schedule: 'daily 02:00',
    snapshotDays: 2,
    retention: { daily: 7, weekly: 4 },
  });
  return { root, source, clock, plane };
}

describe('ControlPlane', () => {
  it('writes the admin token once, mode 0600, and accepts only live tokens', async () => {
    const { root, plane } = await setup();
    const path = join(root, 'data', 'admin.token');
    expect(plane.adminTokenCreated).toBe(path);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const secret = readFileSync(path, 'utf8').trim();
    expect((await plane.authenticate(secret))?.name).toBe('admin');
    expect(await plane.authenticate(secret + 'x')).toBeUndefined();
    const extra = await plane.tokens.create('ci');
    await plane.tokens.revoke(extra.id);
    expect(await plane.authenticate(extra.token!)).toBeUndefined();
  });

  it('backs up on schedule in two phases, restores, and runs a missed slot once', async () => {
    const { root, source, clock, plane } = await setup();
    const item = await plane.items.protect({
      name: 'docs',
      paths: [source],
      vault: 'main',
      policy: 'nightly',
    });
    expect(item.nextRunAt).toBe('2026-01-05T02:00:00.000Z');
    await plane.settle();
    expect(await plane.items.points('docs')).toHaveLength(0);
    clock.advance(2 * HOUR);
    await plane.settle();
    const [first] = await plane.items.points('docs');
    expect(first?.tiers).toEqual(['snapshot', 'vault']);
    expect(first?.files).toBe(2);
    expect(first?.expiresAt).toBe(new Date(Date.parse(first!.time) + 4 * 7 * DAY).toISOString());
    // Three days off: the three missed slots make one backup, not three.
    clock.advance(3 * DAY);
    await plane.settle();
    expect(await plane.items.points('docs')).toHaveLength(2);
    const backups = await plane.jobs.list({ type: 'backup' });
    expect(backups.map((j) => j.state)).toEqual(['completed', 'completed']);
    expect(backups[0]?.phases.map((p) => p.state)).toEqual(['done', 'done']);
    // The snapshot store shares the vault's keys: the first transfer read all 300,006 bytes,
    // the second (nothing changed) none.
    expect(backups.map((j) => j.phases[1]?.progress?.bytes)).toEqual([0, 300_006]);
    const target = join(root, 'restored');
    const job = await plane.items.restore('docs', { point: 'latest', target, verify: true });
    await plane.settle();
    const done = await plane.jobs.show(job.id);
    expect(done.state).toBe('completed');
    expect(done.result?.['tier']).toBe('snapshot');
    const restored = join(target, source);
    expect(readFileSync(join(restored, 'a.txt'), 'utf8')).toBe('alpha\n');
    expect(readFileSync(join(restored, 'sub', 'b.bin')).equals(Buffer.alloc(300_000, 7))).toBe(
      true,
    );
    const vault = await plane.vaults.show('main');
    expect(vault.usage.points).toBe(2);
    expect(vault.usage.storedBytes).toBeGreaterThan(0);
  });

  it('expires points by the policy, keeps the newest, and drops old snapshots from the snapshot tier', async () => {
    const { source, clock, plane } = await setup();
    await plane.items.protect({ name: 'docs', paths: [source], vault: 'main', policy: 'nightly' });
    for (let day = 0; day < 12; day++) {
      clock.advance(DAY);
      await plane.settle();
    }
    const points = await plane.items.points('docs');
    const jobsSeen = await plane.jobs.list({});
    const why = JSON.stringify(
      jobsSeen.filter((j) => j.attempts.length > 0),
      null,
      1,
    );
    // Now is Saturday 2026-01-17 00:30; backups ran daily at 00:30 from Tuesday the 6th (the
    // clock moves a day at a time). Daily 7 keeps the 11th to the 17th; weekly 4 keeps the
    // first point of each week: the 6th (week of the 5th) and the 12th (a Monday).
    expect(
      points.map((p) => p.time.slice(0, 10)),
      why,
    ).toEqual([
      '2026-01-06',
      '2026-01-11',
      '2026-01-12',
      '2026-01-13',
      '2026-01-14',
      '2026-01-15',
      '2026-01-16',
      '2026-01-17',
    ]);
    const withSnapshot = points.filter((p) => p.tiers.includes('snapshot'));
    expect(withSnapshot.length).toBeLessThanOrEqual(2);
    expect(
      points.every((p) => p.tiers.includes('vault')),
      JSON.stringify(
        { points, jobs: jobsSeen.map((j) => [j.type, j.state, j.attempts, j.result]) },
        null,
        1,
      ),
    ).toBe(true);
    const retention = await plane.jobs.list({ type: 'retention' });
    expect(retention.length).toBeGreaterThan(0);
    expect(retention.every((j) => j.state === 'completed')).toBe(true);
  });

  it('keeps a usable snapshot point when the transfer fails, and finishes it on retry', async () => {
    const { root, source, clock, plane } = await setup();
    await plane.items.protect({ name: 'docs', paths: [source], vault: 'main', policy: 'nightly' });
    const location = join(root, 'data', 'vaults', 'main');
    renameSync(location, `${location}.away`);
    const job = await plane.items.backupNow('docs');
    await plane.settle();
    const waiting = await plane.jobs.show(job.id);
    expect(waiting.state).toBe('waiting_retry');
    expect(waiting.phases.map((p) => p.state)).toEqual(['done', 'pending']);
    expect(waiting.attempts[0]?.outcome).toBe('failed');
    const [point] = await plane.items.points('docs');
    expect(point?.tiers).toEqual(['snapshot']);
    // The snapshot tier alone serves a restore meanwhile.
    const target = join(root, 'from-snapshot');
    const restore = await plane.items.restore('docs', { point: point!.id, target });
    await plane.settle();
    expect((await plane.jobs.show(restore.id)).result?.['tier']).toBe('snapshot');
    expect(readFileSync(join(target, source, 'a.txt'), 'utf8')).toBe('alpha\n');
    renameSync(`${location}.away`, location);
    clock.advance(60_000);
    await plane.settle();
    const done = await plane.jobs.show(job.id);
    expect(done.state).toBe('completed');
    expect(done.retryCount).toBe(1);
    expect(done.phases.map((p) => p.state)).toEqual(['skipped', 'done']);
    const points = await plane.items.points('docs');
    expect(points.map((p) => [p.id, p.tiers])).toEqual([[point!.id, ['snapshot', 'vault']]]);
  });

  it('soft-deletes on stop with delete, undeletes, resumes, and purges after the soft-delete days', async () => {
    const { source, clock, plane } = await setup();
    await plane.items.protect({ name: 'docs', paths: [source], vault: 'main', policy: 'nightly' });
    const job = await plane.items.backupNow('docs');
    await plane.settle();
    expect((await plane.jobs.show(job.id)).state).toBe('completed');
    const deleted = await plane.items.stop('docs', true);
    expect(deleted.state).toBe('soft_deleted');
    expect(deleted.purgeAt).toBe(new Date(clock.now() + 14 * DAY).toISOString());
    await expect(plane.items.backupNow('docs')).rejects.toThrow(/not protected/);
    await expect(plane.vaults.remove('main')).rejects.toThrow(/soft-deleted: docs/);
    expect((await plane.items.undelete('docs')).state).toBe('stopped');
    expect((await plane.items.resume('docs')).state).toBe('protected');
    await plane.items.backupNow('docs');
    await plane.settle();
    expect(await plane.items.points('docs')).toHaveLength(2);
    await plane.items.stop('docs', true);
    clock.advance(13 * DAY);
    await plane.settle();
    expect(await plane.items.points('docs')).toHaveLength(2);
    clock.advance(1 * DAY + 1);
    await plane.settle();
    await expect(plane.items.show('docs')).rejects.toThrow(/No protected item/);
    const vault = await plane.vaults.show('main');
    expect(vault.usage.points).toBe(0);
    await plane.vaults.remove('main');
  });

  it('refuses to turn always-on soft delete off, and rejects a bad policy precisely', async () => {
    const { plane } = await setup();
    await plane.vaults.update('main', { softDelete: { state: 'always_on' } });
    await expect(plane.vaults.update('main', { softDelete: { state: 'off' } })).rejects.toThrow(
      /always_on/,
    );
    await expect(
      plane.policies.create({ name: 'bad', schedule: 'daily 25:00', retention: { daily: 7 } }),
    ).rejects.toMatchObject({ code: 'POLICY_INVALID' });
    await expect(
      plane.policies.create({ name: 'bad', schedule: 'daily 02:00', retention: { daily: 0 } }),
    ).rejects.toThrow(/retention.daily/);
  });
});
