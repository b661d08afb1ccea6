import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

/** The keys s3rver accepts (its built-in dummy account). */
export const S3RVER_CREDENTIALS = Object.freeze({
  accessKeyId: 'S3RVER',
  secretAccessKey: 'S3RVER',
});

/**
 * SDK options s3rver needs: it ignores flexible checksums, so only checksums the API requires are
 * sent and checked. Production keeps the SDK's defaults.
 */
export const S3RVER_CLIENT_OPTIONS = Object.freeze({
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
} as const);

/** A running s3rver child process. */
export interface S3rverProcess {
  /** `http://127.0.0.1:<port>`. */
  readonly endpoint: string;
  /** Its data directory: one sub-directory per bucket. */
  readonly directory: string;
  /** Stops the process and removes the data directory. */
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 20_000;

/**
 * Runs s3rver in the child (CommonJS, for `node -e`; arguments: s3rver's main module, its
 * filesystem store, the data directory). One change to s3rver: its store writes an object in
 * place and answers before the file is complete, so concurrent PUTs of one key interleave and a
 * GET right after a PUT can see a prefix. S3 publishes a PUT atomically once acknowledged, and the
 * conformance suite checks exactly that; so here the content goes to a temp file beside the
 * object (whose name s3rver's listing ignores) and is renamed into place before the answer.
 */
const BOOTSTRAP = `
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { Readable } = require('node:stream');
const { pipeline } = require('node:stream/promises');
const [main, storeModule, directory] = process.argv.slice(1);
const S3rver = require(main);
const FilesystemStore = require(storeModule);
FilesystemStore.prototype.putObject = async function putObject(object) {
  const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
  await fs.promises.mkdir(path.dirname(objectPath), { recursive: true });
  const temp = objectPath + '.tmp-' + crypto.randomBytes(8).toString('hex');
  const md5 = crypto.createHash('md5');
  let size = 0;
  const content = Buffer.isBuffer(object.content) ? Readable.from([object.content]) : object.content;
  try {
    await pipeline(
      content,
      async function* (chunks) {
        for await (const chunk of chunks) {
          md5.update(chunk);
          size += chunk.length;
          yield chunk;
        }
      },
      fs.createWriteStream(temp),
    );
    await fs.promises.rename(temp, objectPath);
  } catch (error) {
    await fs.promises.rm(temp, { force: true });
    throw error;
  }
  const digest = md5.digest('hex');
  await this.putMetadata(object.bucket, object.key, object.metadata, digest);
  return { size, md5: digest };
};
new S3rver({ directory, address: '127.0.0.1', port: 0, silent: true }).run().then(
  ({ address, port }) => console.log('S3rver listening on ' + address + ':' + port),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
`;

/**
 * Starts s3rver (the devDependency) in a child process on 127.0.0.1 and a free port, silent, with
 * a fresh temp directory, its object writes made atomic (see `BOOTSTRAP`). It runs with
 * `--openssl-legacy-provider` because its continuation tokens use DES, which OpenSSL 3 disables:
 * without it the second page of a listing fails.
 * Rejects with a message naming what is missing when it cannot start; never resolves half-way.
 */
export async function startS3rver(): Promise<S3rverProcess> {
  let main: string;
  let store: string;
  try {
    const require = createRequire(import.meta.url);
    main = require.resolve('s3rver');
    store = require.resolve('s3rver/lib/stores/filesystem.js');
  } catch (error) {
    throw new Error(
      's3rver is not installed: it is a devDependency of Holdfast (run `npm ci`), needed to test ' +
        'the S3 backend against a real S3-compatible server.',
      { cause: error },
    );
  }
  const directory = await mkdtemp(path.join(tmpdir(), 'holdfast-s3rver-'));
  const child = spawn(
    process.execPath,
    ['--input-type=commonjs', '-e', BOOTSTRAP, main, store, directory],
    {
      // Replaced, not extended: the test runner's own NODE_OPTIONS mean nothing to s3rver.
      env: { ...process.env, NODE_OPTIONS: '--openssl-legacy-provider' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  try {
    const port = await waitForPort(child);
    return {
      endpoint: `http://127.0.0.1:${port}`,
      directory,
      stop: async () => {
        await stopChild(child);
        await rm(directory, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await stopChild(child);
    await rm(directory, { recursive: true, force: true });
    throw error;
  }
}

/** Resolves with the port from s3rver's "listening on 127.0.0.1:<port>" line. */
function waitForPort(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    const fail = (problem: string): void => {
      clearTimeout(timer);
      reject(
        new Error(
          `s3rver could not start: ${problem}. It needs Node.js with the OpenSSL legacy provider ` +
            `(--openssl-legacy-provider) and a writable temp directory. Its output: ` +
            JSON.stringify((stdout + stderr).slice(-2000)),
        ),
      );
    };
    const timer = setTimeout(
      () => fail(`no "listening" line within ${START_TIMEOUT_MS / 1000} s`),
      START_TIMEOUT_MS,
    );
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      const match = /listening on [^\s:]+:(\d+)/.exec(stdout);
      if (match !== null) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.once('error', (error) => fail(`spawning it failed (${error.message})`));
    child.once('exit', (code, signal) => fail(`it exited early (code ${code}, signal ${signal})`));
  });
}

/** Sends SIGTERM, then SIGKILL after 5 s, and waits for the exit. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}
