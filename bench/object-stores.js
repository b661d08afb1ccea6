// Object-storage part of the benchmark: the first backup of the tree data set into a vault on
// Azurite (Azure Blob) and on s3rver (S3), both started here on 127.0.0.1, next to the local-disk
// figure of the main run; with the requests each backup made per GiB stored, from the CLI's
// HOLDFAST_BACKEND_STATS report. Emulators on the same machine measure Holdfast's side of the
// protocol (request count, overheads, parallelism), not a cloud's throughput.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const AZURITE_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

/** The stores measured: how to start each, the vault URL and the environment it needs. */
export const STORES = {
  azure: {
    label: 'Azure Blob (Azurite 3.35)',
    start(root, port) {
      const entry = path.join(root, 'node_modules', 'azurite', 'dist', 'src', 'blob', 'main.js');
      return [
        process.execPath,
        [entry, '--blobHost', '127.0.0.1', '--blobPort', String(port)],
        ['--disableTelemetry', '--silent', '--skipApiVersionCheck', '--location'],
        {},
      ];
    },
    vault: () => 'azure://devstoreaccount1/bench/vault',
    env: (port) => ({
      AZURE_STORAGE_CONNECTION_STRING:
        `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${AZURITE_KEY};` +
        `BlobEndpoint=http://127.0.0.1:${port}/devstoreaccount1;`,
    }),
  },
  s3: {
    label: 'S3 (s3rver 3.7)',
    start(root, port) {
      const entry = path.join(root, 'node_modules', 's3rver', 'bin', 's3rver.js');
      return [
        process.execPath,
        [entry, '--address', '127.0.0.1', '--port', String(port), '--silent'],
        ['--configure-bucket', 'bench', '--directory'],
        // Its listing continuation tokens use a cipher OpenSSL 3 keeps in the legacy provider.
        { NODE_OPTIONS: '--openssl-legacy-provider' },
      ];
    },
    vault: () => 's3://bench/vault',
    env: (port) => ({
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      AWS_REGION: 'us-east-1',
      AWS_ENDPOINT_URL: `http://127.0.0.1:${port}`,
      // s3rver keeps the SDK's checksum framing inside objects otherwise.
      AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
      AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
    }),
  },
};

function freePort() {
  const r = spawnSync(process.execPath, [
    '-e',
    "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})",
  ]);
  return Number(r.stdout.toString().trim());
}

function answers(port) {
  const r = spawnSync(process.execPath, [
    '-e',
    `const c=require('net').connect(${port},'127.0.0.1');c.on('connect',()=>process.exit(0));c.on('error',()=>process.exit(1))`,
  ]);
  return r.status === 0;
}

/** Starts a store's server; returns { env, vault, stop } or throws saying what is missing. */
export function startStore(name, root, dataDir) {
  const store = STORES[name];
  const port = freePort();
  fs.rmSync(dataDir, { recursive: true, force: true });
  fs.mkdirSync(dataDir, { recursive: true });
  const [cmd, args, tail, extraEnv] = store.start(root, port);
  const child = spawn(cmd, [...args, ...tail, dataDir], {
    cwd: dataDir,
    env: { ...process.env, ...extraEnv },
    stdio: 'ignore',
    detached: false,
  });
  const deadline = Date.now() + 30_000;
  while (!answers(port)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${store.label} did not start on 127.0.0.1:${port} (is npm ci done?)`);
    }
    spawnSync('sleep', ['0.2']);
  }
  return {
    label: store.label,
    vault: store.vault(),
    env: store.env(port),
    stop() {
      child.kill('SIGKILL');
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
