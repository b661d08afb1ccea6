import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { AZURITE_KEY, startAzurite, type Azurite } from '../../src/backends/azurite.testkit.js';
import {
  S3RVER_CLIENT_OPTIONS,
  S3RVER_CREDENTIALS,
  startS3rver,
  type S3rverProcess,
} from '../../src/backends/s3rver.testkit.js';
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

// The engine's commands with the vault in object storage — a real Azurite and a real s3rver on
// 127.0.0.1 — with credentials in the ecosystems' standard environment variables, never on the
// command line.

let azurite: Azurite;
let s3rver: S3rverProcess;
let root: string;

beforeAll(async () => {
  [azurite, s3rver] = await Promise.all([startAzurite(), startS3rver()]);
  const client = new S3Client({
    endpoint: s3rver.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { ...S3RVER_CREDENTIALS },
    ...S3RVER_CLIENT_OPTIONS,
  });
  await client.send(new CreateBucketCommand({ Bucket: 'e2e-vault' }));
  client.destroy();
  root = mkdtempSync(join(tmpdir(), 'holdfast-e2e-objects-'));
}, 60_000);

afterAll(async () => {
  killStartedProcesses();
  await Promise.all([azurite?.stop(), s3rver?.stop()]);
  rmSync(root, { recursive: true, force: true });
});

interface Store {
  readonly vault: string;
  env(): Record<string, string>;
  /** The secret that must never be shown, and the environment with a wrong one. */
  secret(): string;
  wrongEnv(): Record<string, string>;
}

const STORES: Record<string, Store> = {
  'azure:// on Azurite': {
    vault: 'azure://devstoreaccount1/e2e-vault/main',
    env: () => ({ AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString }),
    secret: () => AZURITE_KEY,
    wrongEnv: () => ({
      AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString.replace(
        AZURITE_KEY,
        Buffer.alloc(64, 1).toString('base64'),
      ),
    }),
  },
  's3:// on s3rver': {
    vault: 's3://e2e-vault/main',
    env: () => ({
      AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
      AWS_REGION: 'us-east-1',
      AWS_ENDPOINT_URL: s3rver.endpoint,
      // Test configuration only: s3rver keeps the SDK's checksum framing inside objects.
      AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
      AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
    }),
    secret: () => S3RVER_CREDENTIALS.secretAccessKey + '-never-shown',
    wrongEnv: () => ({
      AWS_ACCESS_KEY_ID: 'NOT-A-KEY-never-shown',
      AWS_SECRET_ACCESS_KEY: 'wrong-secret-never-shown',
    }),
  },
};

describe.each(Object.entries(STORES))('holdfast with an %s vault', (label, store) => {
  it('initialises, backs up, restores identically, checks, forgets and prunes — without ever showing the key', async () => {
    const env = { HOLDFAST_VAULT: store.vault, HOLDFAST_PASSWORD: PASSPHRASE, ...store.env() };
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
    for (const r of outputs) expect(r.stdout + r.stderr).not.toContain(store.secret());
    // A wrong key is refused as a permission problem, and no credential is in the message.
    const wrong = await run(['points'], { ...env, ...store.wrongEnv() });
    expect(wrong.code, wrong.stderr).toBe(1);
    expect(wrong.stderr).toMatch(/BACKEND_PERMISSION/);
    expect(wrong.stderr).not.toMatch(/never-shown|AQEBAQEB/);
  });
});
