import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBucket, startStore, type TestStore } from '../backends/object-stores.testkit.js';
import { ManualClock } from '../core/index.js';
import { ControlPlane } from './control-plane.js';
import { openVault } from './open-vault.js';
import { listPoints } from './resolve-point.js';

// The control plane with vaults in object storage — a real Azurite and a real s3rver on
// 127.0.0.1 — reached through `azure://` and `s3://` locations with the credentials in the
// environment, as an operator sets them.

let root: string;
const stores: TestStore[] = [];
const saved: Record<string, string | undefined> = {};

beforeAll(async () => {
  // Buckets (and containers) as the describe blocks below name them; both stores at once.
  stores.push(await startStore('azure', 'holdfast-main'), await startStore('s3', 'holdfast-main'));
  await createBucket(stores[1]!, 'holdfast-dr');
  for (const store of stores)
    for (const [key, value] of Object.entries(store.env)) {
      if (!(key in saved)) saved[key] = process.env[key];
      process.env[key] = value;
    }
  root = mkdtempSync(join(tmpdir(), 'holdfast-objstore-'));
}, 60_000);

afterAll(async () => {
  for (const [key, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
  await Promise.all(stores.map((s) => s.stop()));
  rmSync(root, { recursive: true, force: true });
});

describe.each([
  [
    'Azure Blob (Azurite)',
    'azure://devstoreaccount1/holdfast-main/vault',
    'azure://devstoreaccount1/holdfast-dr/geo',
  ],
  ['S3 (s3rver)', 's3://holdfast-main/vault', 's3://holdfast-dr/geo'],
])('vaults in %s', (label, location, secondaryLocation) => {
  it('back up in two phases, restore from the vault tier, and take a local vault’s GRS copy', async () => {
    const dir = join(root, label.slice(0, 2));
    const source = join(dir, 'source');
    mkdirSync(join(source, 'sub'), { recursive: true });
    writeFileSync(join(source, 'a.txt'), 'alpha\n');
    writeFileSync(join(source, 'sub', 'b.bin'), Buffer.alloc(2_000_000, 9));
    const plane = await ControlPlane.open({
      dataDir: join(dir, 'data'),
      clock: new ManualClock(Date.UTC(2026, 0, 5)),
    });
    try {
      const vault = await plane.vaults.create({
        name: 'cloud',
        location,
        passphrase: 'a long test passphrase',
      });
      expect(vault.location).toBe(location);
      await plane.policies.create({ name: 'p', schedule: 'daily 02:00', retention: { daily: 7 } });
      await plane.items.protect({ name: 'docs', paths: [source], vault: 'cloud', policy: 'p' });
      const backup = await plane.items.backupNow('docs');
      await plane.settle();
      expect((await plane.jobs.show(backup.id)).state).toBe('completed');
      const [point] = await plane.items.points('docs');
      expect(point?.tiers).toEqual(['snapshot', 'vault']);
      const target = join(dir, 'restored');
      const restore = await plane.items.restore('docs', { point: 'latest', target, tier: 'vault' });
      await plane.settle();
      expect((await plane.jobs.show(restore.id)).result?.['tier']).toBe('vault');
      expect(
        readFileSync(join(target, source, 'sub', 'b.bin')).equals(Buffer.alloc(2_000_000, 9)),
      ).toBe(true);
      expect((await plane.vaults.show('cloud')).usage.storedBytes).toBeGreaterThan(0);

      // A local primary with its secondary in object storage.
      await plane.vaults.create({
        name: 'geo',
        location: join(dir, 'primary'),
        passphrase: 'a long test passphrase',
        redundancy: 'grs',
        secondaryLocation,
      });
      await plane.items.protect({ name: 'docs2', paths: [source], vault: 'geo', policy: 'p' });
      await plane.items.backupNow('docs2');
      await plane.settle();
      expect((await plane.vaults.replication('geo')).replication).toMatchObject({
        objectsBehind: 0,
      });
      // The bare engine opens the copy with the operator's passphrase and sees the point.
      const copy = await openVault(secondaryLocation, {
        kind: 'passphrase',
        passphrase: 'a long test passphrase',
      });
      expect(
        (await listPoints(copy)).map((p) => p.tags.some((t) => t.startsWith('item:'))),
      ).toEqual([true]);
    } finally {
      await plane.stop();
    }
  });
});
