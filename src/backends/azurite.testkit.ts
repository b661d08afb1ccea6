import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

// Azurite, Microsoft's Azure Storage emulator, started as a child process for tests: its blob
// service only, on 127.0.0.1 and a port the system picks, with its data in a temp directory.

/** The emulator's fixed development account. */
export const AZURITE_ACCOUNT = 'devstoreaccount1';

/** The development account's published key: public, the same in every Azurite. */
export const AZURITE_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

/** A running Azurite blob service. */
export interface Azurite {
  readonly port: number;
  /** `http://127.0.0.1:<port>/devstoreaccount1`. */
  readonly blobEndpoint: string;
  /** A connection string for the development account at {@link Azurite.blobEndpoint}. */
  readonly connectionString: string;
  /** Kills the process at once (SIGKILL), as a crash or a network loss would look. */
  kill(): Promise<void>;
  /** Stops the process and removes its data. */
  stop(): Promise<void>;
}

/** A connection string for the development account with `key`, at `blobEndpoint`. */
export function azuriteConnectionString(blobEndpoint: string, key = AZURITE_KEY): string {
  return (
    `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${key};` +
    `BlobEndpoint=${blobEndpoint};`
  );
}

/** The blob service's entry point, from the installed package's `bin`. */
function azuriteBlobEntry(): string {
  const require = createRequire(import.meta.url);
  let manifestPath: string;
  try {
    manifestPath = require.resolve('azurite/package.json');
  } catch (error) {
    throw new Error(
      'Azurite is not installed, so the Azure Blob tests cannot run: install the dev ' +
        'dependencies (npm ci), which include "azurite".',
      { cause: error },
    );
  }
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as {
    bin?: Record<string, string>;
  };
  const entry = manifest.bin?.['azurite-blob'];
  if (entry === undefined) {
    throw new Error(`The installed azurite package (${manifestPath}) has no "azurite-blob" bin.`);
  }
  return path.join(path.dirname(manifestPath), entry);
}

/** A port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no TCP port was assigned');
  return address.port;
}

/** True once anything answers HTTP on the port (Azurite answers 400 to a bare GET). */
function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/', timeout: 1000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * Starts Azurite's blob service and resolves once it answers. Fails (never skips) with what is
 * missing when it cannot start within `timeoutMs`.
 */
export async function startAzurite(timeoutMs = 30_000): Promise<Azurite> {
  const entry = azuriteBlobEntry();
  const dir = await mkdtemp(path.join(tmpdir(), 'holdfast-azurite-'));
  const port = await freePort();
  // The SDK speaks a newer service version than this Azurite knows; the calls Holdfast makes
  // are the same in both, so the version check is skipped.
  const args = [
    entry,
    ...['--blobHost', '127.0.0.1', '--blobPort', String(port), '--location', dir],
    ...['--disableTelemetry', '--silent', '--skipApiVersionCheck'],
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const stopped = exited(child);
  const kill = async (): Promise<void> => {
    child.kill('SIGKILL');
    await stopped;
  };
  const stop = async (): Promise<void> => {
    await kill();
    await rm(dir, { recursive: true, force: true });
  };
  const give = Date.now() + timeoutMs;
  while (!(await answers(port))) {
    if (child.exitCode !== null || Date.now() > give) {
      await stop();
      throw new Error(
        `Azurite (${entry}) did not start on 127.0.0.1:${port} ` +
          `(exit code ${child.exitCode ?? 'none, timed out'}). Its output:\n${output}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const blobEndpoint = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
  return {
    port,
    blobEndpoint,
    connectionString: azuriteConnectionString(blobEndpoint),
    kill,
    stop,
  };
}
