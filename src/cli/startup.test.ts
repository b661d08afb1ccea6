import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// Every `holdfast` run pays for what it loads. The object-store SDKs load only when a vault in
// object storage is used, and the server's stack only for `holdfast server`: help, the direct
// commands on a local vault and the server's clients load none of them. This runs the built
// command with a module hook that records every package it imports.

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI_BIN = join(REPO_ROOT, 'bin', 'holdfast.js');

/** Packages that take 0.1–0.5 s each to load. */
const HEAVY = [
  '@aws-sdk/client-s3',
  '@azure/storage-blob',
  'fastify',
  'pino',
  'prom-client',
  'nodemailer',
  'kysely',
  'better-sqlite3',
  'croner',
];

const HOOK = `
import { appendFileSync } from 'node:fs';
let file;
export function initialize(data) {
  file = data.file;
}
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  if (!/^(\\.|\\/|node:|file:|data:)/.test(specifier)) appendFileSync(file, specifier + '\\n');
  return resolved;
}
`;

let root: string;
let vault: string;

/** What one run printed, its exit code and the packages it imported. */
interface Run {
  readonly code: number | null;
  readonly stderr: string;
  readonly packages: string[];
}

let runs = 0;

async function holdfast(args: string[], env: Record<string, string> = {}): Promise<Run> {
  runs += 1;
  const record = join(root, `packages-${runs}.txt`);
  const register = join(root, `register-${runs}.mjs`);
  writeFileSync(record, '');
  writeFileSync(
    register,
    `import { register } from 'node:module';\n` +
      `register(${JSON.stringify(pathToFileURL(join(root, 'hook.mjs')).href)}, ` +
      `{ data: { file: ${JSON.stringify(record)} } });\n`,
  );
  // Only what the command needs from the environment: no credentials, vault or server of the
  // machine running the tests.
  const childEnv = {
    PATH: process.env['PATH'] ?? '',
    HOME: root,
    HOLDFAST_DATA_DIR: join(root, 'data'),
    HOLDFAST_PASSWORD: 'startup test passphrase',
    ...env,
  };
  const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((done) => {
    execFile(
      process.execPath,
      ['--import', pathToFileURL(register).href, CLI_BIN, ...args],
      { env: childEnv, timeout: 60_000 },
      (error, _stdout, stderr) => done({ code: error ? (error.code as number) : 0, stderr }),
    );
  });
  const packages = [...new Set(readFileSync(record, 'utf8').split('\n').filter(Boolean))];
  return { code, stderr, packages };
}

function heavyIn(packages: string[]): string[] {
  return packages.filter((p) => HEAVY.some((h) => p === h || p.startsWith(`${h}/`)));
}

/** A local port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as { port: number };
  await new Promise((done) => server.close(done));
  return port;
}

beforeAll(() => {
  if (!existsSync(join(REPO_ROOT, 'dist', 'cli', 'main.js')))
    throw new Error("The CLI is not built: run 'npx tsc -b' (npm test does) first.");
  root = mkdtempSync(join(tmpdir(), 'holdfast-startup-'));
  writeFileSync(join(root, 'hook.mjs'), HOOK);
  vault = join(root, 'vault');
  mkdirSync(join(root, 'files'));
  writeFileSync(join(root, 'files', 'a.txt'), 'alpha\n');
});

afterAll(() => {
  if (root !== undefined) rmSync(root, { recursive: true, force: true });
});

describe('what holdfast loads', () => {
  it('loads no object-store SDK and no server stack for help, a local vault or a server client', async () => {
    const port = await closedPort();
    for (const args of [
      ['--help'],
      ['backup', '--help'],
      ['init', '--vault', vault],
      ['backup', '--vault', vault, join(root, 'files')],
      ['points', '--vault', vault],
      ['restore', '--vault', vault, 'latest', '--target', join(root, 'restored')],
      ['check', '--vault', vault],
      ['vault', 'list', '--server', `http://127.0.0.1:${port}`],
    ]) {
      const run = await holdfast(args);
      if (args[0] === 'vault')
        expect(run.code, run.stderr).toBe(1); // nothing listens there
      else expect(run.code, run.stderr).toBe(0);
      expect(run.packages, args.join(' ')).toContain('commander');
      expect(heavyIn(run.packages), args.join(' ')).toEqual([]);
    }
  });

  it('checks the options of holdfast server before loading the server', async () => {
    const run = await holdfast(['server', '--max-jobs', '0']);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toContain('--max-jobs takes a whole number');
    expect(heavyIn(run.packages)).toEqual([]);
  });

  it('checks an s3:// location without loading the AWS SDK', async () => {
    const run = await holdfast(['points', '--vault', 's3://Bad_Bucket/v']);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toContain('Invalid S3 URL');
    expect(heavyIn(run.packages)).toEqual([]);
  });

  it('loads the Azure SDK when an azure:// vault is used, and reports missing credentials', async () => {
    const run = await holdfast(['points', '--vault', 'azure://acct1/backups']);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toContain('No Azure credentials for azure://acct1/backups');
    expect(heavyIn(run.packages)).toEqual(['@azure/storage-blob']);
  });
});
