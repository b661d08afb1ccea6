import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeS3, type FakeS3Object } from '../backends/s3-fake.testkit.js';
import { ManualClock } from '../core/index.js';
import { ControlPlane } from './control-plane.js';

// An immutable vault in a bucket with S3 Object Lock (the strict fake: s3rver has no object
// lock, Azurite answers 501 for immutability policies): the objects of every point are locked
// until its expiry, and nothing — retention, prune — asks S3 to delete or replace a locked one.

const DAY = 86_400_000;
let fake: FakeS3;
let root: string;
const saved: Record<string, string | undefined> = {};
const ENV = { AWS_ACCESS_KEY_ID: 'AKIDLOCKTEST', AWS_SECRET_ACCESS_KEY: 'lock-test-secret' };

beforeAll(async () => {
  fake = await FakeS3.start();
  fake.createBucket('locked');
  for (const [key, value] of Object.entries(ENV)) {
    saved[key] = process.env[key];
    process.env[key] = value;
  }
  root = mkdtempSync(join(tmpdir(), 'holdfast-locks-'));
});

afterAll(async () => {
  for (const [key, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
  await fake?.close();
  rmSync(root, { recursive: true, force: true });
});

/** The vault's objects in the bucket, locks aside, by name under the vault prefix. */
function vaultObjects(): Map<string, FakeS3Object> {
  const out = new Map<string, FakeS3Object>();
  for (const [key, object] of fake.objects('locked'))
    if (key.startsWith('vault/') && !key.startsWith('vault/locks/')) out.set(key.slice(6), object);
  return out;
}

describe('an immutable vault on S3 with Object Lock', () => {
  it('locks each point’s objects until its expiry and never deletes a locked object', async () => {
    const source = join(root, 'source');
    mkdirSync(source, { recursive: true });
    writeFileSync(join(source, 'a.bin'), Buffer.alloc(3_000_000, 1));
    // The catalog's clock starts at the real time (S3 compares locks with the real one).
    const clock = new ManualClock(Date.now());
    const plane = await ControlPlane.open({
      dataDir: join(root, 'data'),
      clock,
    });
    try {
      await plane.vaults.create({
        name: 'vault',
        location: `s3://locked/vault?endpoint=${fake.endpoint}&object-lock=true&conditional-put=true`,
        passphrase: 'a long test passphrase',
      });
      await plane.vaults.immutability('vault', 'enabled');
      await plane.policies.create({ name: 'p', schedule: 'daily 02:00', retention: { daily: 7 } });
      await plane.items.protect({ name: 'docs', paths: [source], vault: 'vault', policy: 'p' });

      const first = await plane.items.backupNow('docs');
      await plane.settle();
      const firstJob = await plane.jobs.show(first.id);
      expect(firstJob.state).toBe('completed');
      const [p1] = await plane.items.points('docs');
      const expiry1 = Date.parse(p1!.expiresAt!);
      const objects = vaultObjects();
      // Every object is locked: the point exactly until its expiry, the rest a week longer.
      for (const [name, object] of objects) {
        expect(object.lock?.mode, name).toBe('GOVERNANCE');
        const expected = name.startsWith('points/') ? expiry1 : expiry1 + 7 * DAY;
        expect(object.lock?.until, name).toBe(expected);
      }
      const packs = [...objects.keys()].filter((n) => n.startsWith('packs/'));
      expect(packs.length).toBeGreaterThan(0);

      // A second point reuses the first one's data: only its new objects need a lock.
      writeFileSync(join(source, 'b.txt'), 'bravo\n');
      clock.advance(DAY);
      fake.reset();
      await plane.items.backupNow('docs');
      await plane.settle();
      const retentionCalls = fake.requests.filter((r) => r.op === 'PutObjectRetention');
      expect(retentionCalls.length).toBeGreaterThan(0);
      expect(retentionCalls.length).toBeLessThan(vaultObjects().size);
      const points = await plane.items.points('docs');
      expect(points).toHaveLength(2);
      for (const [name, object] of vaultObjects()) expect(object.lock, name).toBeDefined();

      // Locking the vault for good makes every kept point's locks COMPLIANCE.
      await plane.vaults.immutability('vault', 'locked');
      for (const [name, object] of vaultObjects())
        expect(object.lock?.mode, name).toBe('COMPLIANCE');

      // Ten days on (by the catalog's clock) the first point has expired, but S3 still holds
      // its objects under lock: retention leaves them — and the point — in place.
      clock.advance(10 * DAY);
      await plane.settle();
      const runs = await plane.jobs.list({ type: 'retention' });
      expect(runs.map((j) => j.state)).toEqual(runs.map(() => 'completed'));
      expect(runs.map((j) => j.result)).toContainEqual(
        expect.objectContaining({ pointsRemoved: 0, pointsKeptLocked: 1 }),
      );
      // (A scheduled backup ran meanwhile: three points.)
      const after = await plane.items.points('docs');
      expect(after.map((p) => p.id)).toContain(p1!.id);
      expect(fake.lockedChanges).toEqual([]);
      expect([...vaultObjects().keys()].filter((n) => n.startsWith('points/'))).toHaveLength(
        after.length,
      );
    } finally {
      await plane.stop();
    }
  });
});
