/**
 * An agent backs up with its own append-only token through the server, then tries — with that
 * token, through the CLI — to delete and to overwrite what is in the vault.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  describeRun,
  killStartedProcesses,
  parseJson,
  PASSPHRASE,
  run,
  writeSeededTree,
  type BackupSummary,
  type PointRow,
} from './cli.testkit.js';
import { poll, startServer, type ServerProcess } from './server.testkit.js';
import { diffTrees, snapshotTree } from './tree.testkit.js';

let root: string;
let server: ServerProcess;
let agentEnv: Record<string, string | undefined>;
const source = () => join(root, 'source');

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'holdfast-agent-e2e-'));
  writeSeededTree(source(), { count: 40, minSize: 0, maxSize: 200_000, seed: 0xa9e47 });
  // The server's clock starts at the real time (the agent's points carry real times) and then
  // moves only when the test says.
  server = await startServer(join(root, 'data'), { fakeClock: new Date().toISOString() });
  await server.json(['vault', 'create', 'main', '--location', join(root, 'vault')], {
    HOLDFAST_PASSWORD: PASSPHRASE,
  });
  await server.json([
    'policy',
    'create',
    'nightly',
    '--schedule',
    'daily 02:00',
    '--retain-daily',
    '7',
  ]);
  const item = await server.json<{ agent: boolean; nextRunAt: string | null }>([
    'protect',
    '--agent',
    '--vault',
    'main',
    '--policy',
    'nightly',
    '--name',
    'web01',
  ]);
  expect(item).toMatchObject({ agent: true, nextRunAt: null });
  const created = await server.json<{ token: string; scope: string; vault: string }>([
    'token',
    'create',
    'web01',
    '--agent-for',
    'main',
  ]);
  expect(created).toMatchObject({ scope: 'agent', vault: 'main' });
  // What the agent's host has: the server's address, its own token and the vault passphrase
  // — no storage credentials, no admin token.
  agentEnv = {
    HOLDFAST_VAULT: `${server.url}/vaults/main`,
    HOLDFAST_TOKEN: created.token,
    HOLDFAST_PASSWORD: PASSPHRASE,
    HOLDFAST_SERVER: undefined,
  };
});

afterAll(async () => {
  await server?.stop();
  killStartedProcesses();
  rmSync(root, { recursive: true, force: true });
});

const agent = (args: readonly string[]) => run(args, agentEnv);

describe('an agent with an append-only token', () => {
  let first: BackupSummary;

  it('backs up through the server, twice, and restores', async () => {
    const backup = ['backup', source(), '--tag', 'item:web01', '--json'];
    const r1 = await agent(backup);
    expect(r1.code, describeRun(backup, r1)).toBe(0);
    first = parseJson<BackupSummary>(backup, r1);
    const r2 = await agent(backup);
    expect(r2.code, describeRun(backup, r2)).toBe(0);
    expect(parseJson<BackupSummary>(backup, r2).filesRead).toBe(0);

    const target = join(root, 'restored');
    const restore = ['restore', first.id, '--target', target, '--verify'];
    const r3 = await agent(restore);
    expect(r3.code, describeRun(restore, r3)).toBe(0);
    expect(diffTrees(snapshotTree(source()), snapshotTree(join(target, source())))).toEqual([]);
    const check = await agent(['check', '--read-data']);
    expect(check.code, describeRun(['check'], check)).toBe(0);

    // The server recorded both points for the agent's item, in the vault tier.
    const recorded = await server.list<{ tiers: string[] }>(['points', 'web01']);
    expect(recorded.map((p) => p.tiers)).toEqual([['vault'], ['vault']]);
    const refused = await server.cli(['backup-now', 'web01']);
    expect(refused.code, refused.stderr).toBe(1);
    expect(refused.stderr).toMatch(/backed up by its agent/);
  });

  it('cannot forget, prune or remove keys; the refusals are audited and every point stays', async () => {
    const before = parseJson<PointRow[]>(['points'], await agent(['points', '--json']));
    expect(before).toHaveLength(2);

    const forget = ['forget', first.id];
    const f = await agent(forget);
    expect(f.code, describeRun(forget, f)).toBe(1);
    expect(f.stderr).toMatch(/append-only/);
    const keep = ['forget', '--keep-last', '1', '--prune'];
    const k = await agent(keep);
    expect(k.code, describeRun(keep, k)).toBe(1);
    // A second key slot is an addition (allowed); removing the first one is not.
    const keyFile = join(root, 'agent.key');
    const add = ['key', 'add', '--new-key-file', keyFile];
    const a = await agent(add);
    expect(a.code, describeRun(add, a)).toBe(0);
    // Listed as opened with the new key file: `current` marks its slot; remove another one.
    const byKeyFile = { ...agentEnv, HOLDFAST_PASSWORD: undefined };
    const list = ['--key-file', keyFile, 'key', 'list', '--json'];
    const keys = parseJson<Array<{ id: string; current: boolean }>>(
      list,
      await run(list, byKeyFile),
    );
    expect(keys).toHaveLength(3);
    const other = keys.find((key) => !key.current)!;
    const remove = ['--key-file', keyFile, 'key', 'remove', other.id];
    const rm = await run(remove, byKeyFile);
    expect(rm.code, describeRun(remove, rm)).toBe(1);
    expect(rm.stderr).toMatch(/append-only/);

    const after = parseJson<PointRow[]>(['points'], await agent(['points', '--json']));
    expect(after.map((p) => p.id).sort()).toEqual(before.map((p) => p.id).sort());
    const check = await agent(['check', '--read-data']);
    expect(check.code, describeRun(['check'], check)).toBe(0);

    const audit = await server.list<{ actor: string; action: string; target: string }>([
      'audit',
      '--limit',
      '100',
    ]);
    const refused = audit.filter((e) => e.actor === 'web01');
    expect(refused.map((e) => e.action)).toContain('deleteVaultObject refused (VAULT_APPEND_ONLY)');
    expect(refused.some((e) => e.target === `vaults/main/objects/points/${first.id}`)).toBe(true);
  });

  it('cannot use any other endpoint of the server', async () => {
    const env = { ...agentEnv, HOLDFAST_VAULT: undefined, HOLDFAST_SERVER: server.url };
    for (const args of [['vault', 'list'], ['token', 'list'], ['audit']]) {
      const r = await run(args, env);
      expect(r.code, describeRun(args, r)).toBe(1);
      expect(r.stderr).toMatch(/agent token/);
    }
  });

  it("loses its points only to the server's retention", async () => {
    const before = parseJson<PointRow[]>(['points'], await agent(['points', '--json']));
    expect(before).toHaveLength(2);
    await server.advance(10 * 86_400_000);
    await poll(
      async () => (await server.list<unknown>(['points', 'web01'])).length === 1,
      60_000,
      'the retention run',
    );
    // The newest point of a protected item stays; the older one has left the vault too.
    const after = parseJson<PointRow[]>(['points'], await agent(['points', '--json']));
    expect(after.map((p) => p.id)).toEqual([before[1]!.id]);
    const check = await agent(['check', '--read-data']);
    expect(check.code, describeRun(['check'], check)).toBe(0);
  });
});
