import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../core/index.js';
import { Catalog } from './catalog.js';
import type { PolicyRef, VaultRef } from './records.js';

// The catalog suite runs per dialect; SQLite is the embedded default. PostgreSQL joins this
// list when the scale-out deployment lands (the queries are written for both).
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function openSqlite(clock = new ManualClock(1_700_000_000_000)): Promise<{
  catalog: Catalog;
  path: string;
  clock: ManualClock;
}> {
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-catalog-'));
  dirs.push(dir);
  const path = join(dir, 'catalog.sqlite');
  return { catalog: await Catalog.open({ kind: 'sqlite', path }, clock), path, clock };
}

async function seed(catalog: Catalog): Promise<{ vaultId: VaultRef; policyId: PolicyRef }> {
  const vault = await catalog.vaults.create({
    name: 'main',
    location: '/srv/vault',
    keyFile: '/data/keys/main.key',
    vaultUid: 'a'.repeat(64),
    redundancy: 'lrs',
    softDelete: { state: 'on', days: 14 },
  });
  const policy = await catalog.policies.create('nightly', { any: 'spec' });
  return { vaultId: vault.id, policyId: policy.id };
}

describe('Catalog on SQLite', () => {
  it('creates the schema once and reopens an existing catalog without migrating again', async () => {
    const { catalog, path, clock } = await openSqlite();
    await seed(catalog);
    await catalog.close();
    const again = await Catalog.open({ kind: 'sqlite', path }, clock);
    expect((await again.vaults.list()).map((v) => v.name)).toEqual(['main']);
    expect((await again.policies.byName('nightly'))?.spec).toEqual({ any: 'spec' });
    await again.close();
  });

  it('refuses a second vault with the same name and an item pointing at no vault', async () => {
    const { catalog } = await openSqlite();
    const { policyId } = await seed(catalog);
    await expect(
      catalog.vaults.create({
        name: 'main',
        location: '/elsewhere',
        keyFile: 'k',
        vaultUid: 'b'.repeat(64),
        redundancy: 'lrs',
        softDelete: { state: 'on', days: 14 },
      }),
    ).rejects.toThrow(/UNIQUE/);
    await expect(
      catalog.items.create({
        name: 'docs',
        workload: 'files',
        source: { paths: ['/docs'], excludes: [], oneFileSystem: false },
        vaultId: 'vlt_missing' as VaultRef,
        policyId,
        nextRunAt: null,
      }),
    ).rejects.toThrow(/FOREIGN KEY/);
    await catalog.close();
  });

  it('lets exactly one of two runners claim a ready job', async () => {
    const { catalog, clock } = await openSqlite();
    const job = await catalog.jobs.create({
      type: 'backup',
      trigger: 'manual',
      phases: ['snapshot', 'transfer'],
      maxRetries: 2,
    });
    const [ready] = await catalog.jobs.ready(clock.now(), 10);
    expect(ready?.id).toBe(job.id);
    const claims = await Promise.all([catalog.jobs.claim(ready!), catalog.jobs.claim(ready!)]);
    expect(claims.filter((c) => c !== undefined)).toHaveLength(1);
    expect((await catalog.jobs.byId(job.id))?.state).toBe('running');
    expect(await catalog.jobs.ready(clock.now(), 10)).toEqual([]);
    await catalog.close();
  });

  it('finds due items by their next run and keeps jobs of the future out of the queue', async () => {
    const { catalog, clock } = await openSqlite();
    const { vaultId, policyId } = await seed(catalog);
    const source = { paths: ['/docs'], excludes: [], oneFileSystem: false };
    await catalog.items.create({
      name: 'a',
      workload: 'files',
      source,
      vaultId,
      policyId,
      nextRunAt: clock.now() + 10,
    });
    await catalog.items.create({
      name: 'b',
      workload: 'files',
      source,
      vaultId,
      policyId,
      nextRunAt: clock.now() - 10,
    });
    expect((await catalog.items.due(clock.now())).map((i) => i.name)).toEqual(['b']);
    await catalog.jobs.create({
      type: 'retention',
      trigger: 'system',
      phases: ['expire'],
      maxRetries: 0,
      runAfter: clock.now() + 1000,
    });
    expect(await catalog.jobs.ready(clock.now(), 10)).toEqual([]);
    clock.advance(1000);
    expect(await catalog.jobs.ready(clock.now(), 10)).toHaveLength(1);
    await catalog.close();
  });

  it('refuses to cancel a job that has ended', async () => {
    const { catalog } = await openSqlite();
    const job = await catalog.jobs.create({
      type: 'verify',
      trigger: 'manual',
      phases: ['read'],
      maxRetries: 0,
    });
    expect(await catalog.jobs.requestCancel(job.id)).toBe(true);
    await catalog.jobs.update(job.id, { state: 'completed' });
    expect(await catalog.jobs.requestCancel(job.id)).toBe(false);
    await catalog.close();
  });

  it('stores tokens by hash only and stops accepting a revoked one', async () => {
    const { catalog } = await openSqlite();
    const token = await catalog.tokens.create('admin', 'f'.repeat(64));
    expect((await catalog.tokens.useByHash('f'.repeat(64)))?.id).toBe(token.id);
    expect(await catalog.tokens.revoke(token.id)).toBe(true);
    expect(await catalog.tokens.useByHash('f'.repeat(64))).toBeUndefined();
    expect(await catalog.tokens.revoke(token.id)).toBe(false);
    await catalog.close();
  });
});
