/**
 * The CLI as a client of the server, against a fake REST API (fake-api.testkit.ts): requests
 * it sends, how it prints answers and errors, exit codes, --json, and following jobs with
 * --wait. The real server is tested end to end elsewhere; this needs none.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  describeRun,
  killStartedProcesses,
  run,
  start,
  waitFor,
  type RunEnv,
} from './cli.testkit.js';
import {
  apiError,
  FakeApi,
  itemView,
  jobView,
  pointView,
  policyView,
  tokenView,
  vaultView,
} from './fake-api.testkit.js';

const TOKEN = 'tok-secret-e2e-0123456789';

let api: FakeApi;
let root: string;
let env: RunEnv;

beforeAll(async () => {
  api = await FakeApi.start();
  root = await mkdtemp(join(tmpdir(), 'holdfast-e2e-client-'));
  mkdirSync(join(root, 'data'));
  env = {
    HOLDFAST_SERVER: api.url,
    HOLDFAST_TOKEN: TOKEN,
    HOLDFAST_DATA_DIR: join(root, 'data'),
    HOLDFAST_PASSWORD: 'client test passphrase',
  };
});

afterAll(async () => {
  killStartedProcesses();
  await api?.stop();
  await rm(root, { recursive: true, force: true });
});

beforeEach(() => api.reset());

/** Runs the CLI against the fake server and requires exit code `code`. */
async function cli(args: string[], code: number, extra: RunEnv = {}) {
  const r = await run(args, { ...env, ...extra }, { cwd: root, timeoutMs: 60_000 });
  expect(r.code, describeRun(args, r)).toBe(code);
  expect(r.stdout + r.stderr, 'the token is never printed').not.toContain(TOKEN);
  return r;
}

describe('requests and answers', () => {
  it('vault create sends the name, an absolute location, the passphrase and settings', async () => {
    api.on('POST', '/api/vaults', { status: 201, body: vaultView('main') });
    const args = [
      'vault',
      'create',
      'main',
      '--location',
      'rel/vault',
      '--soft-delete',
      'always-on',
    ];
    const r = await cli([...args, '--soft-delete-days', '30', '--compression', '5'], 0);
    const [req] = api.seen('POST', '/api/vaults');
    expect(req?.authorization).toBe(`Bearer ${TOKEN}`);
    expect(req?.body).toEqual({
      name: 'main',
      location: resolve(root, 'rel/vault'),
      passphrase: 'client test passphrase',
      softDelete: { state: 'always_on', days: 30 },
      compressionLevel: 5,
    });
    expect(r.stdout).toContain('vault main created at /srv/backup/main');

    const keyed = await cli(['vault', 'create', 'k', '--key-file', 'k.key', '--json'], 0);
    expect(api.seen('POST', '/api/vaults')[1]?.body).toEqual({
      name: 'k',
      keyFile: resolve(root, 'k.key'),
    });
    expect(JSON.parse(keyed.stdout)).toEqual(vaultView('main'));
  });

  it('prints listings as tables, and with --json the API answer as it came', async () => {
    const list = { data: [vaultView('main'), vaultView('offsite', { items: 0 })] };
    api.on('GET', '/api/vaults', { status: 200, body: list });
    const human = await cli(['vault', 'list'], 0);
    const lines = human.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+LOCATION\s+SOFT DELETE\s+ITEMS\s+POINTS\s+PROTECTED/);
    expect(lines[1]).toMatch(
      /^main\s+\/srv\/backup\/main\s+on, 14 days\s+2\s+12\s+3\.00 GiB\s+1\.50 GiB/,
    );
    expect(lines).toHaveLength(3);
    const json = await cli(['vault', 'list', '--json'], 0);
    expect(JSON.parse(json.stdout)).toEqual(list);
  });

  it('policy create sends schedule text and retention; update changes only what is given', async () => {
    api.on('POST', '/api/policies', { status: 201, body: policyView('nightly') });
    await cli(
      [
        'policy',
        'create',
        'nightly',
        '--schedule',
        'every 4h from 08:00 for 24h',
        '--timezone',
        'Europe/Paris',
        '--snapshot-days',
        '3',
        '--retain-daily',
        '30',
        '--retain-weekly',
        '12',
      ],
      0,
    );
    expect(api.seen('POST', '/api/policies')[0]?.body).toEqual({
      name: 'nightly',
      schedule: 'every 4h from 08:00 for 24h',
      timezone: 'Europe/Paris',
      snapshotDays: 3,
      retention: { daily: 30, weekly: 12 },
    });
    api.on('GET', '/api/policies/nightly', { status: 200, body: policyView('nightly') });
    api.on('PUT', '/api/policies/nightly', { status: 200, body: policyView('nightly') });
    await cli(['policy', 'update', 'nightly', '--retain-yearly', '5'], 0);
    expect(api.seen('PUT', '/api/policies/nightly')[0]?.body).toEqual({
      schedule: { kind: 'daily', at: '02:00' },
      timezone: 'UTC',
      snapshotDays: 2,
      retention: { daily: 30, yearly: 5 },
    });
    await cli(['policy', 'update', 'nightly'], 2);
  });

  it('protect takes --vault as a vault name, makes paths absolute, and never opens a vault', async () => {
    api.on('POST', '/api/items', { status: 201, body: itemView('www') });
    const args = ['protect', 'site', '/etc', '--vault', 'main', '--policy', 'nightly'];
    const r = await cli([...args, '--name', 'www', '--exclude', '*.tmp', '-x'], 0, {
      HOLDFAST_VAULT: join(root, 'no-vault-here'),
    });
    expect(api.seen('POST', '/api/items')[0]?.body).toEqual({
      name: 'www',
      paths: [resolve(root, 'site'), '/etc'],
      excludes: ['*.tmp'],
      oneFileSystem: true,
      vault: 'main',
      policy: 'nightly',
    });
    expect(r.stdout).toContain('item www protected');
    const location = await cli(
      ['protect', '/etc', '--vault', '/srv/v', '--policy', 'p', '--name', 'n'],
      2,
    );
    expect(location.stderr).toMatch(/NAME of a vault on the server.*vault create/s);
    expect(api.seen('POST', '/api/items')).toHaveLength(1);
  });

  it('sends the other calls the commands stand for', async () => {
    api.on('GET', '/api/jobs', { status: 200, body: { data: [jobView('job_1', 'failed')] } });
    api.on('POST', '/api/jobs/job_1/cancel', { status: 202, body: jobView('job_1', 'running') });
    api.on('POST', '/api/items/www/stop', {
      status: 200,
      body: itemView('www', { state: 'stopped' }),
    });
    api.on('PATCH', '/api/items/www', { status: 200, body: itemView('www', { policy: 'weekly' }) });
    api.on('DELETE', '/api/vaults/old', { status: 204 });
    api.on('POST', '/api/tokens', {
      status: 201,
      body: tokenView('tok_1', 'ci', { token: 'the-new-secret' }),
    });
    api.on('DELETE', '/api/tokens/tok_1', { status: 204 });

    const jobs = await cli(
      ['job', 'list', '--state', 'failed', '--item', 'www', '--limit', '5'],
      0,
    );
    expect(api.seen('GET', '/api/jobs')[0]?.url).toBe('/api/jobs?item=www&state=failed&limit=5');
    expect(jobs.stdout).toMatch(/^job_1\s+backup\s+failed\s+www\s+manual/m);
    await cli(['job', 'list', '--limit', '0'], 2);
    expect((await cli(['job', 'cancel', 'job_1'], 0)).stdout).toContain(
      'cancel requested for job job_1',
    );
    await cli(['item', 'stop', 'www', '--delete-data'], 0);
    expect(api.seen('POST', '/api/items/www/stop')[0]?.body).toEqual({ deleteData: true });
    await cli(['item', 'set-policy', 'www', 'weekly'], 0);
    expect(api.seen('PATCH', '/api/items/www')[0]?.body).toEqual({ policy: 'weekly' });
    expect(JSON.parse((await cli(['--json', 'vault', 'delete', 'old'], 0)).stdout)).toEqual({
      name: 'old',
      deleted: true,
    });
    const token = await cli(['token', 'create', 'ci'], 0);
    expect(token.stdout).toContain('the-new-secret');
    expect(api.seen('POST', '/api/tokens')[0]?.body).toEqual({ name: 'ci' });
    await cli(['token', 'revoke', 'tok_1'], 0);
    api.on('POST', '/api/vaults/main/verify', { status: 202, body: jobView('job_v', 'queued') });
    await cli(['vault', 'verify', 'main', '--read-data', '50%'], 0);
    expect(api.seen('POST', '/api/vaults/main/verify')[0]?.body).toEqual({ readDataPercent: 50 });
    await cli(['vault', 'verify', 'main', '--read-data', 'all'], 2);
    expect(api.seen('DELETE', '/api/tokens/tok_1')).toHaveLength(1);
  });
});

describe('errors and credentials', () => {
  it('shows the message, the code and the details; request errors exit 2, others 1', async () => {
    const details = [{ path: ['retention', 'daily'], message: 'must be at least 1' }];
    api.on(
      'POST',
      '/api/policies',
      apiError(400, 'REQUEST_INVALID', 'The request is invalid.', details),
    );
    api.on('GET', '/api/items/nope', apiError(404, 'RESOURCE_NOT_FOUND', "No item named 'nope'."));
    api.on(
      'DELETE',
      '/api/policies/used',
      apiError(409, 'RESOURCE_IN_USE', 'Policy used by 2 items.'),
    );
    const bad = await cli(
      ['policy', 'create', 'p', '--schedule', 'daily 02:00', '--retain-daily', '0'],
      2,
    );
    expect(bad.stderr).toContain('error: The request is invalid. [REQUEST_INVALID]');
    expect(bad.stderr).toContain('  retention.daily: must be at least 1');
    const missing = await cli(['item', 'show', 'nope'], 1);
    expect(missing.stderr).toContain("error: No item named 'nope'. [RESOURCE_NOT_FOUND]");
    expect((await cli(['policy', 'delete', 'used'], 1)).stderr).toContain('[RESOURCE_IN_USE]');
  });

  it('says to start the server, or to use --vault, when the server cannot be reached', async () => {
    const closed = await FakeApi.start();
    await closed.stop();
    for (const args of [
      ['vault', 'list'],
      ['points', 'www'],
      ['backup-now', 'www', '--wait'],
    ]) {
      const r = await cli(args, 1, { HOLDFAST_SERVER: closed.url });
      expect(r.stderr).toContain('[SERVER_UNREACHABLE]');
      expect(r.stderr).toContain("'holdfast server'");
      expect(r.stderr).toContain('--vault <location>');
    }
  });

  it('takes the token from HOLDFAST_TOKEN, --token-file, or <data-dir>/admin.token', async () => {
    api.on('GET', '/api/items', { status: 200, body: { data: [] } });
    const dataDir = join(root, 'other-data');
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(join(dataDir, 'admin.token'), 'from-admin-file\n', { mode: 0o600 });
    writeFileSync(join(root, 'ci.token'), 'from-token-file\n');
    await cli(['item', 'list', '--data-dir', dataDir], 0, { HOLDFAST_TOKEN: undefined });
    await cli(['item', 'list', '--token-file', 'ci.token', '--data-dir', dataDir], 0, {
      HOLDFAST_TOKEN: undefined,
    });
    await cli(['item', 'list', '--token-file', 'ci.token'], 0);
    await cli(['item', 'list'], 0, { HOLDFAST_TOKEN: undefined });
    expect(api.seen('GET', '/api/items').map((r) => r.authorization)).toEqual([
      'Bearer from-admin-file',
      'Bearer from-token-file',
      `Bearer ${TOKEN}`,
      undefined,
    ]);
    api.on('GET', '/api/vaults', apiError(401, 'AUTH_REQUIRED', 'A bearer token is required.'));
    const denied = await cli(['vault', 'list'], 1, { HOLDFAST_TOKEN: undefined });
    expect(denied.stderr).toContain('[AUTH_REQUIRED]');
    expect(denied.stderr).toContain(join(root, 'data', 'admin.token'));
    await cli(['vault', 'list', '--token-file', 'missing.token'], 2, { HOLDFAST_TOKEN: undefined });
  });

  it('keeps the server form and the direct form of points and restore apart', async () => {
    const noVault = await cli(['points'], 2);
    expect(noVault.stderr).toContain('holdfast points <item>');
    expect(noVault.stderr).toContain('holdfast --vault <location> points');
    const mixed = await cli(['points', 'www'], 2, { HOLDFAST_VAULT: join(root, 'v') });
    expect(mixed.stderr).toContain('HOLDFAST_VAULT=');
    const noPoint = await cli(['restore', 'latest', '--target', 't'], 2);
    expect(noPoint.stderr).toContain('--point <id|latest>');
    const direct = await cli(
      ['--vault', join(root, 'v'), 'restore', 'latest', '--target', 't', '--point', 'x'],
      2,
    );
    expect(direct.stderr).toContain('--point: only for restores through the server');
    await cli(['restore', 'www', '--point', 'latest', '--target', 't', '--overwrite', 'maybe'], 2);
    await cli(['server', '--listen', 'not-an-address'], 2);
    const location = await cli(['vault', 'create', 'v', '--vault', join(root, 'v')], 2);
    expect(location.stderr).toContain("'holdfast vault create <name> --location <dir>'");
    expect(api.requests).toEqual([]);
  });
});

describe('jobs and --wait', () => {
  const progress = { bytes: 512 * 1024, items: 300, totalBytes: 1024 * 1024, totalItems: 600 };

  it('backup-now without --wait prints the queued job; with --wait follows it to its outcome', async () => {
    api.on('POST', '/api/items/www/backup', { status: 202, body: jobView('job_7', 'queued') });
    const queued = await cli(['backup-now', 'www'], 0);
    expect(queued.stdout).toContain('holdfast job watch job_7');
    const final = jobView('job_7', 'completed_with_warnings', {
      result: { files: 1200, newBytes: 2048 },
      errorCount: 1,
      errors: [{ path: '/etc/shadow', message: 'permission denied' }],
    });
    api.on('GET', '/api/jobs/job_7', [
      { status: 200, body: jobView('job_7', 'running', {}, progress) },
      { status: 200, body: final },
    ]);
    const r = await cli(['backup-now', 'www', '--wait', '--json-progress'], 3);
    const events = r.stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string });
    expect(
      events.filter((e) => e.type === 'state').map((e) => (e as { state?: string }).state),
    ).toEqual(['queued', 'running', 'completed_with_warnings']);
    expect(r.stdout).toMatch(/job job_7 \(backup of item www\) completed with warnings in 1m02s/);
    expect(r.stdout).toContain('newBytes: 2.00 KiB');
    expect(r.stdout).toContain('/etc/shadow: permission denied');
  });

  it('restore through the server: body, then exit 1 for failed and 130 for cancelled', async () => {
    const failed = jobView('job_r', 'failed', {
      type: 'restore',
      attempts: [
        {
          startedAt: 'x',
          endedAt: 'y',
          outcome: 'failed',
          error: { code: 'BACKEND_IO', message: 'disk gone' },
        },
      ],
    });
    api.on('POST', '/api/items/www/restore', {
      status: 202,
      body: jobView('job_r', 'queued', { type: 'restore' }),
    });
    api.on('GET', '/api/jobs/job_r', { status: 200, body: failed });
    const args = ['restore', 'www', '--point', 'latest', '--target', 'out', '--include', '/etc/**'];
    const r = await cli([...args, '--verify', '--overwrite', 'always', '--wait', '--json'], 1);
    expect(api.seen('POST', '/api/items/www/restore')[0]?.body).toEqual({
      point: 'latest',
      target: resolve(root, 'out'),
      include: ['/etc/**'],
      overwrite: 'always',
      verify: true,
    });
    expect(JSON.parse(r.stdout)).toEqual(failed);
    expect(r.stderr).toContain('error: job job_r failed: disk gone [BACKEND_IO]');
    api.on('GET', '/api/jobs/job_r', { status: 200, body: jobView('job_r', 'cancelled') });
    await cli(['job', 'watch', 'job_r'], 130);
    api.on('GET', '/api/jobs/job_r', { status: 200, body: jobView('job_r', 'completed') });
    await cli(['job', 'watch', 'job_r', '--quiet'], 0);
  });

  it('points <item> lists the points of an item as a table', async () => {
    api.on('GET', '/api/items/www/points', { status: 200, body: { data: [pointView('rp_abc')] } });
    const r = await cli(['points', 'www'], 0);
    expect(r.stdout).toMatch(
      /^rp_abc\s+\S+\s+snapshot\+vault\s+file-system\s+1200\s+5\.00 MiB\s+2\.00 MiB/m,
    );
  });

  it('Ctrl-C while waiting stops the waiting, not the job', async () => {
    api.on('GET', '/api/jobs/job_long', {
      status: 200,
      body: jobView('job_long', 'running', {}, progress),
    });
    const started = start(['job', 'watch', 'job_long'], env, { cwd: root, timeoutMs: 60_000 });
    expect(await waitFor(() => api.seen('GET', '/api/jobs/job_long').length >= 3, 30_000, 20)).toBe(
      true,
    );
    started.child.kill('SIGINT');
    const r = await started.result;
    expect(r.code, describeRun(['job', 'watch', 'job_long'], r)).toBe(130);
    expect(r.stderr).toContain(
      "goes on on the server: follow it with 'holdfast job watch job_long'",
    );
    expect(api.requests.filter((q) => q.method !== 'GET')).toEqual([]);
  });
});
