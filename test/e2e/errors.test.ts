/**
 * What a user sees when something is wrong: credentials, vault location, format version, usage,
 * and file systems that fill up during a backup or a restore.
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CLI_BIN,
  cliEnv,
  describeRun,
  mountTmpfs,
  PASSPHRASE,
  restoredPath,
  Sandbox,
  unmount,
  writeSeededTree,
  writeTree,
  type BackupSummary,
  type CheckReport,
  type PointRow,
} from './cli.testkit.js';
import { diffTrees, snapshotTree } from './tree.testkit.js';

describe('credential, location and usage errors', () => {
  let sb: Sandbox;
  let src: string;

  beforeAll(async () => {
    sb = await Sandbox.create('errors');
    await sb.init();
    src = sb.path('src');
    writeTree(src, { 'a.txt': 'alpha\n', 'sub/b.txt': 'beta\n' });
    await sb.backup([src]);
  }, 120_000);

  afterAll(async () => {
    await sb?.cleanup();
  });

  it('refuses a wrong passphrase with exit 1, names the passphrase, and changes nothing', async () => {
    const before = snapshotTree(sb.vault);
    for (const args of [
      ['points'],
      ['backup', src],
      ['restore', 'latest', '--target', sb.path('x')],
    ]) {
      const r = await sb.cli(args, { HOLDFAST_PASSWORD: 'not the passphrase' });
      expect(r.code, describeRun(args, r)).toBe(1);
      expect(r.stderr).toMatch(/passphrase/i);
      expect(r.stderr).toContain('VAULT_WRONG_KEY');
    }
    expect(diffTrees(before, snapshotTree(sb.vault))).toEqual([]);
    expect(existsSync(sb.path('x'))).toBe(false);
  }, 60_000);

  it('says there is no vault, suggests init, and creates nothing', async () => {
    const missing = sb.path('no-vault-here');
    for (const args of [['points'], ['backup', src]]) {
      const r = await sb.cli(args, { HOLDFAST_VAULT: missing });
      expect(r.code, describeRun(args, r)).toBe(1);
      expect(r.stderr).toMatch(/no vault/i);
      expect(r.stderr).toContain('holdfast init');
      expect(r.stderr).toContain('VAULT_NOT_FOUND');
    }
    expect(existsSync(missing)).toBe(false);
  }, 60_000);

  it('refuses a vault of an unknown format version', async () => {
    const future = sb.path('future-vault');
    cpSync(sb.vault, future, { recursive: true });
    const markerPath = join(future, 'holdfast.json');
    const marker = JSON.parse(readFileSync(markerPath, 'utf8')) as { version: number };
    writeFileSync(markerPath, JSON.stringify({ ...marker, version: 99 }));
    const before = snapshotTree(future);
    for (const args of [['points'], ['backup', src]]) {
      const r = await sb.cli(args, { HOLDFAST_VAULT: future });
      expect(r.code, describeRun(args, r)).toBe(1);
      expect(r.stderr).toContain('VAULT_VERSION_UNSUPPORTED');
      expect(r.stderr).toContain('99');
    }
    expect(diffTrees(before, snapshotTree(future))).toEqual([]);
  }, 60_000);

  it('exits 2 without a passphrase when there is no terminal to ask on', async () => {
    const r = await sb.cli(['points'], { HOLDFAST_PASSWORD: undefined });
    expect(r.code, describeRun(['points'], r)).toBe(2);
    expect(r.stderr).toContain('HOLDFAST_PASSWORD');
    expect(r.stderr).toContain('PASSWORD_MISSING');
  });

  it('reads the passphrase from HOLDFAST_PASSWORD_FILE', async () => {
    const file = sb.path('passphrase.txt');
    writeFileSync(file, PASSPHRASE + '\n', { mode: 0o600 });
    const r = await sb.cli(['--json', 'points'], {
      HOLDFAST_PASSWORD: undefined,
      HOLDFAST_PASSWORD_FILE: file,
    });
    expect(r.code, describeRun(['points'], r)).toBe(0);
    expect(JSON.parse(r.stdout)).toHaveLength(1);
  });

  it('exits 2 on usage errors', async () => {
    const cases: Array<{ args: string[]; env?: Record<string, string | undefined> }> = [
      { args: ['backup', '--no-such-option', src] },
      { args: ['no-such-command'] },
      { args: ['restore', 'latest'] },
      { args: ['restore', 'latest', '--target', sb.path('t'), '--overwrite', 'sometimes'] },
      { args: ['restore', 'not-a-point-id', '--target', sb.path('t')] },
      { args: ['points'], env: { HOLDFAST_VAULT: undefined } },
      { args: ['init', '--compression', '0'], env: { HOLDFAST_VAULT: sb.path('t') } },
      { args: ['init', '--compression', 'fast'], env: { HOLDFAST_VAULT: sb.path('t') } },
    ];
    for (const { args, env } of cases) {
      const r = await sb.cli(args, env ?? {});
      expect(r.code, describeRun(args, r)).toBe(2);
      expect(r.stderr.trim(), describeRun(args, r)).not.toBe('');
    }
    expect(existsSync(sb.path('t'))).toBe(false);
  }, 60_000);
});

describe('full file systems', () => {
  let sb: Sandbox;
  const mounts: string[] = [];

  beforeAll(async () => {
    sb = await Sandbox.create('full-disk');
    for (const name of ['vault-fs', 'target-fs']) {
      const dir = sb.path(name);
      mkdirSync(dir);
      mountTmpfs(dir, '8m');
      mounts.push(dir);
    }
  }, 60_000);

  afterAll(async () => {
    for (const dir of mounts) unmount(dir);
    await sb?.cleanup();
  });

  it('fails a backup into a full vault clearly; the vault still checks and restores', async () => {
    const env = { HOLDFAST_VAULT: join(sb.path('vault-fs'), 'vault') };
    const run = (args: string[]) => sb.cli(args, env);
    expect((await run(['init'])).code).toBe(0);
    const small = sb.path('small');
    writeSeededTree(small, { count: 10, minSize: 1_000, maxSize: 40_000, seed: 61 });
    const ok = await run(['--json', 'backup', small]);
    expect(ok.code, describeRun(['backup', small], ok)).toBe(0);
    const first = JSON.parse(ok.stdout) as BackupSummary;

    const big = sb.path('big');
    writeSeededTree(big, { count: 6, minSize: 3_000_000, maxSize: 4_000_000, seed: 62 });
    const full = await run(['backup', big]);
    expect(full.code, describeRun(['backup', big], full)).toBe(1);
    expect(full.stderr).toMatch(/no space|full/i);
    expect(full.stderr).toContain('BACKEND_NO_SPACE');

    const points = await run(['--json', 'points']);
    expect((JSON.parse(points.stdout) as PointRow[]).map((p) => p.id)).toEqual([first.id]);
    const check = await run(['--json', 'check']);
    expect(check.code, describeRun(['check'], check)).toBe(0);
    expect((JSON.parse(check.stdout) as CheckReport).ok).toBe(true);

    const target = sb.path('restored-small');
    const restore = await run(['restore', first.id, '--target', target]);
    expect(restore.code, describeRun(['restore'], restore)).toBe(0);
    expect(diffTrees(snapshotTree(small), snapshotTree(restoredPath(target, small)))).toEqual([]);
  }, 180_000);

  it('fails a restore onto a full target clearly', async () => {
    await sb.init();
    const data = sb.path('data');
    writeSeededTree(data, { count: 5, minSize: 3_000_000, maxSize: 4_000_000, seed: 63 });
    await sb.backup([data]);
    const target = join(sb.path('target-fs'), 'restore');
    const args = ['restore', 'latest', '--target', target];
    const r = await sb.cli(args);
    expect(r.code, describeRun(args, r)).toBe(1);
    expect(r.stderr).toMatch(/full|no space/i);
    expect(r.stderr).toContain('RESTORE_WRITE_FAILED');
  }, 180_000);
});

describe('output into a closed pipe', () => {
  it('ends quietly with exit 0 when the reader has gone (holdfast --help | head -0)', async () => {
    const child = spawn(process.execPath, [CLI_BIN, 'restore', '--help'], {
      env: cliEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // The reader goes away before the command has written anything.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });
});
