import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../core/index.js';
import { ControlPlane } from './control-plane.js';

const DAY = 86_400_000;
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup() {
  const root = mkdtempSync(join(tmpdir(), 'holdfast-immutable-'));
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  const source = join(root, 'source');
  mkdirSync(source);
  writeFileSync(join(source, 'a.txt'), 'alpha\n');
  const clock = new ManualClock(Date.UTC(2026, 0, 5, 0, 30));
  const plane = await ControlPlane.open({ dataDir: join(root, 'data'), clock });
  cleanups.push(() => plane.stop());
  await plane.vaults.create({ name: 'safe', passphrase: 'a long test passphrase' });
  await plane.policies.create({
    name: 'p',
    schedule: 'daily 02:00',
    retention: { daily: 7, weekly: 4 },
  });
  await plane.policies.create({ name: 'short', schedule: 'daily 02:00', retention: { daily: 3 } });
  await plane.policies.create({
    name: 'long',
    schedule: 'daily 02:00',
    retention: { daily: 30, weekly: 8 },
  });
  await plane.items.protect({ name: 'docs', paths: [source], vault: 'safe', policy: 'p' });
  await plane.items.backupNow('docs');
  await plane.settle();
  return { clock, plane };
}

describe('immutable vaults', () => {
  it('refuse deleting data, shortening retention and weakening soft delete, and allow lengthening', async () => {
    const { plane } = await setup();
    expect((await plane.vaults.immutability('safe', 'enabled')).immutability).toBe('enabled');
    await expect(plane.items.stop('docs', true)).rejects.toMatchObject({ code: 'VAULT_IMMUTABLE' });
    await expect(plane.items.setPolicy('docs', 'short')).rejects.toMatchObject({
      code: 'VAULT_IMMUTABLE',
    });
    await expect(
      plane.policies.update('p', { schedule: 'daily 02:00', retention: { daily: 7 } }),
    ).rejects.toThrow(/weekly/);
    await expect(
      plane.vaults.update('safe', { softDelete: { state: 'off' } }),
    ).rejects.toMatchObject({ code: 'VAULT_IMMUTABLE' });
    expect((await plane.items.show('docs')).state).toBe('protected');
    expect(await plane.items.points('docs')).toHaveLength(1);
    // Lengthening is fine, and stopping while keeping the data too.
    expect((await plane.items.setPolicy('docs', 'long')).policy).toBe('long');
    expect((await plane.items.stop('docs', false)).state).toBe('stopped');
  });

  it('can be disabled while enabled, never once locked; points still leave at their expiry', async () => {
    const { plane, clock } = await setup();
    await plane.vaults.immutability('safe', 'enabled');
    await plane.vaults.immutability('safe', 'disabled');
    await plane.vaults.immutability('safe', 'locked');
    await expect(plane.vaults.immutability('safe', 'disabled')).rejects.toMatchObject({
      code: 'SETTING_LOCKED',
    });
    await expect(plane.vaults.immutability('safe', 'enabled')).rejects.toMatchObject({
      code: 'SETTING_LOCKED',
    });
    await plane.items.stop('docs', false);
    // The point's expiry (a Monday point: 4 weeks) passes: retention removes it, immutable or not.
    clock.advance(29 * DAY);
    await plane.settle();
    expect(await plane.items.points('docs')).toHaveLength(0);
  });
});
