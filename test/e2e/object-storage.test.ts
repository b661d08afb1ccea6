import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AZURITE_KEY, startAzurite, type Azurite } from '../../src/backends/azurite.testkit.js';
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
import { diffTrees, snapshotTree } from './tree.testkit.js';

// The engine's commands with the vault in Azure Blob storage: a real Azurite on 127.0.0.1,
// credentials in the standard environment variable, never on the command line.

let azurite: Azurite;
let root: string;

beforeAll(async () => {
  azurite = await startAzurite();
  root = mkdtempSync(join(tmpdir(), 'holdfast-e2e-azure-'));
}, 60_000);

afterAll(async () => {
  killStartedProcesses();
  await azurite?.stop();
  rmSync(root, { recursive: true, force: true });
});

describe('holdfast with an azure:// vault', () => {
  it('initialises, backs up, restores identically, checks, forgets and prunes — without ever showing the key', async () => {
    const env = {
      HOLDFAST_VAULT: 'azure://devstoreaccount1/e2e-vault/main',
      HOLDFAST_PASSWORD: PASSPHRASE,
      AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString,
    };
    const outputs: RunResult[] = [];
    const cli = async (args: string[], code = 0) => {
      const r = await run(args, env);
      outputs.push(r);
      return expectExit(args, r, code);
    };
    const source = join(root, 'source');
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
    const target = join(root, 'restored');
    await cli(['restore', 'latest', '--target', target, '--verify']);
    expect(
      diffTrees(snapshotTree(source), snapshotTree(join(target, source)), { dirMtimes: false }),
    ).toEqual([]);
    await cli(['check', '--read-data']);
    await cli(['forget', first.id, '--prune']);
    const points = parseJson<Array<{ id: string }>>(['points'], await cli(['points', '--json']));
    expect(points.map((p) => p.id)).toEqual([second.id]);
    await cli(['check', '--read-data']);
    for (const r of outputs) {
      expect(r.stdout + r.stderr).not.toContain(AZURITE_KEY);
    }
    // A wrong key is refused as a permission problem, and the key is not in the message.
    const wrong = await run(['points'], {
      ...env,
      AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString.replace(
        AZURITE_KEY,
        Buffer.alloc(64, 1).toString('base64'),
      ),
    });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/BACKEND_PERMISSION/);
    expect(wrong.stderr).not.toContain(Buffer.alloc(64, 1).toString('base64'));
  });
});
