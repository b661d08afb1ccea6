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
import { startServer, type ServerProcess } from './server.testkit.js';
import { diffTrees, snapshotTree } from './tree.testkit.js';

let root: string;
let server: ServerProcess;
let agentEnv: Record<string, string | undefined>;
const source = () => join(root, 'source');

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'holdfast-agent-e2e-'));
  writeSeededTree(source(), { count: 40, minSize: 0, maxSize: 200_000, seed: 0xa9e47 });
  server = await startServer(join(root, 'data'));
  await server.json(['vault', 'create', 'main', '--location', join(root, 'vault')], {
    HOLDFAST_PASSWORD: PASSPHRASE,
  });
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
    const backup = ['backup', source(), '--json'];
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
    const keys = parseJson<Array<{ id: string }>>(
      ['key', 'list'],
      await agent(['key', 'list', '--json']),
    );
    expect(keys).toHaveLength(3);
    // Opened with the new key file, so the slot removed is not the one in use.
    const remove = ['--key-file', keyFile, 'key', 'remove', keys[0]!.id];
    const rm = await run(remove, { ...agentEnv, HOLDFAST_PASSWORD: undefined });
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
});
