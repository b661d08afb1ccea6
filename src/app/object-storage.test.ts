import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAzurite, type Azurite } from '../backends/azurite.testkit.js';
import { ManualClock } from '../core/index.js';
import { ControlPlane } from './control-plane.js';
import { openVault } from './open-vault.js';
import { listPoints } from './resolve-point.js';

// The control plane with vaults in object storage: a real Azurite on 127.0.0.1, reached
// through `azure://` locations with the credentials in the environment, as an operator sets them.

let azurite: Azurite;
let root: string;
const saved = process.env['AZURE_STORAGE_CONNECTION_STRING'];

beforeAll(async () => {
  azurite = await startAzurite();
  process.env['AZURE_STORAGE_CONNECTION_STRING'] = azurite.connectionString;
  root = mkdtempSync(join(tmpdir(), 'holdfast-objstore-'));
}, 60_000);

afterAll(async () => {
  if (saved === undefined) delete process.env['AZURE_STORAGE_CONNECTION_STRING'];
  else process.env['AZURE_STORAGE_CONNECTION_STRING'] = saved;
  await azurite?.stop();
  rmSync(root, { recursive: true, force: true });
});

describe('vaults in Azure Blob storage (Azurite)', () => {
  it('backs up in two phases into an azure:// vault, restores, and replicates a local vault to an azure:// secondary', async () => {
    const source = join(root, 'source');
    mkdirSync(join(source, 'sub'), { recursive: true });
    writeFileSync(join(source, 'a.txt'), 'alpha\n');
    writeFileSync(join(source, 'sub', 'b.bin'), Buffer.alloc(2_000_000, 9));
    const plane = await ControlPlane.open({
      dataDir: join(root, 'data'),
      clock: new ManualClock(Date.UTC(2026, 0, 5)),
    });
    try {
      const location = 'azure://devstoreaccount1/holdfast-main/vault';
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
      // From the vault tier, i.e. out of Azure.
      const target = join(root, 'restored');
      const restore = await plane.items.restore('docs', { point: 'latest', target, tier: 'vault' });
      await plane.settle();
      expect((await plane.jobs.show(restore.id)).result?.['tier']).toBe('vault');
      expect(
        readFileSync(join(target, source, 'sub', 'b.bin')).equals(Buffer.alloc(2_000_000, 9)),
      ).toBe(true);
      expect((await plane.vaults.show('cloud')).usage.storedBytes).toBeGreaterThan(0);

      // A local primary with its secondary in Azure.
      await plane.vaults.create({
        name: 'geo',
        location: join(root, 'primary'),
        passphrase: 'a long test passphrase',
        redundancy: 'grs',
        secondaryLocation: 'azure://devstoreaccount1/holdfast-dr/geo',
      });
      await plane.items.protect({ name: 'docs2', paths: [source], vault: 'geo', policy: 'p' });
      await plane.items.backupNow('docs2');
      await plane.settle();
      expect((await plane.vaults.replication('geo')).replication).toMatchObject({
        objectsBehind: 0,
      });
      // The bare engine opens the Azure copy with the operator's passphrase and sees the point.
      const copy = await openVault('azure://devstoreaccount1/holdfast-dr/geo', {
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
