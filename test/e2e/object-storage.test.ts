import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  expectExit,
  killStartedProcesses,
  parseJson,
  PASSPHRASE,
  run,
  writeSeededTree,
  writeTree,
  type RunResult,
} from './cli.testkit.js';
import { startStore, type TestStore } from '../../src/backends/object-stores.testkit.js';
import { diffTrees, snapshotTree } from './tree.testkit.js';

// The engine's commands with the vault in object storage — a real Azurite and a real s3rver on
// 127.0.0.1 — with credentials in the ecosystems' standard environment variables, never on the
// command line: forget, prune, check and what credentials show (the round trip itself runs on
// every store in roundtrip.test.ts).

let root: string;
const stores: TestStore[] = [];

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'holdfast-e2e-objects-'));
});

afterAll(async () => {
  killStartedProcesses();
  await Promise.all(stores.map((s) => s.stop()));
  rmSync(root, { recursive: true, force: true });
});

describe.each(['azure', 's3'] as const)('holdfast with an %s vault', (label) => {
  it('initialises, backs up, restores identically, checks, forgets and prunes — without ever showing the key', async () => {
    const store = await startStore(label, 'e2e-vault');
    stores.push(store);
    const env = { HOLDFAST_VAULT: store.vault, HOLDFAST_PASSWORD: PASSPHRASE, ...store.env };
    const outputs: RunResult[] = [];
    const cli = async (args: string[], code = 0) => {
      const r = await run(args, env);
      outputs.push(r);
      return expectExit(args, r, code);
    };
    const source = join(root, label.slice(0, 2), 'source');
    writeSeededTree(source, { count: 6, minSize: 100_000, maxSize: 3_000_000, seed: 11 });
    writeTree(source, { 'notes/a.txt': 'alpha\n', 'notes/b.txt': 'bravo\n' });
    await cli(['init']);
    const first = parseJson<{ id: string; files: number }>(
      ['backup'],
      await cli(['backup', source, '--json']),
    );
    expect(first.files).toBe(8);
    writeTree(source, { 'notes/c.txt': 'charlie\n' });
    const second = parseJson<{ id: string; filesRead: number }>(
      ['backup'],
      await cli(['backup', source, '--json']),
    );
    expect(second.filesRead).toBe(1);
    const target = join(root, label.slice(0, 2), 'restored');
    await cli(['restore', 'latest', '--target', target, '--verify']);
    expect(
      diffTrees(snapshotTree(source), snapshotTree(join(target, source)), { dirMtimes: false }),
    ).toEqual([]);
    await cli(['check', '--read-data']);
    await cli(['forget', first.id, '--prune']);
    const points = parseJson<Array<{ id: string }>>(['points'], await cli(['points', '--json']));
    expect(points.map((p) => p.id)).toEqual([second.id]);
    await cli(['check', '--read-data']);
    for (const r of outputs) expect(r.stdout + r.stderr).not.toContain(store.secret);
    // A wrong key is refused as a permission problem, and no credential is in the message.
    const wrong = await run(['points'], { ...env, ...store.wrongEnv });
    expect(wrong.code, wrong.stderr).toBe(1);
    expect(wrong.stderr).toMatch(/BACKEND_PERMISSION/);
    expect(wrong.stderr).not.toMatch(/never-shown|AQEBAQEB/);
  });
});
