/**
 * Starts a real `holdfast server` process for end-to-end tests and talks to it: through the
 * CLI (server mode, token from the data dir) and, for the fake clock, through the API.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  expectExit,
  parseJson,
  run,
  sleep,
  start,
  type RunEnv,
  type RunResult,
  type Started,
} from './cli.testkit.js';

/** Polls an async condition every 100 ms; throws naming `what` when it does not hold in time. */
export async function poll(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

/** A running server process. */
export interface ServerProcess {
  readonly url: string;
  readonly dataDir: string;
  readonly started: Started;
  /** `holdfast <args>` against this server. */
  cli(args: readonly string[], env?: Record<string, string>): Promise<RunResult>;
  /** `holdfast <args> --json`, expecting exit 0, parsed. */
  json<T>(args: readonly string[], env?: Record<string, string>): Promise<T>;
  /** `holdfast <args> --json` for a listing: the `data` of the API's `{ data: [...] }`. */
  list<T>(args: readonly string[], env?: Record<string, string>): Promise<T[]>;
  /** A raw API call with the admin token. */
  api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  /** Moves the fake clock and lets the scheduler see it. */
  advance(ms: number): Promise<void>;
  /** SIGTERM, and waits for the exit. */
  stop(): Promise<RunResult>;
  /** SIGKILL, and waits for the exit. */
  kill9(): Promise<RunResult>;
}

/**
 * Starts `holdfast server` on a free port of 127.0.0.1 and waits until it answers. `env` reaches
 * the server process: an object store's credentials and endpoint, as an operator sets them.
 */
export async function startServer(
  dataDir: string,
  options: { fakeClock?: string; env?: RunEnv } = {},
): Promise<ServerProcess> {
  let output = '';
  const args = ['server', '--data-dir', dataDir, '--listen', '127.0.0.1:0'];
  if (options.fakeClock) args.push('--fake-clock', options.fakeClock);
  const started = start(args, options.env ?? {}, {
    timeoutMs: 600_000,
    onStderr: (chunk) => (output += chunk),
  });
  started.child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  let exited = false;
  void started.result.then(() => (exited = true));
  await poll(
    () => exited || /http:\/\/127\.0\.0\.1:\d+/.test(output),
    30_000,
    'the server to start',
  );
  const url = /http:\/\/127\.0\.0\.1:\d+/.exec(output)?.[0];
  if (!url) throw new Error(`holdfast server did not start:\n${output}`);
  const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
  const env = { HOLDFAST_SERVER: url, HOLDFAST_TOKEN: token };
  const server: ServerProcess = {
    url,
    dataDir,
    started,
    cli: (a, e = {}) => run(a, { ...env, ...e }),
    async json<T>(a: readonly string[], e: Record<string, string> = {}): Promise<T> {
      const full = [...a, '--json'];
      return parseJson<T>(full, expectExit(full, await run(full, { ...env, ...e }), 0));
    },
    async list<T>(a: readonly string[], e: Record<string, string> = {}): Promise<T[]> {
      return (await server.json<{ data: T[] }>(a, e)).data;
    },
    async api(method, path, body) {
      const response = await fetch(url + path, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const text = await response.text();
      return { status: response.status, body: text ? JSON.parse(text) : null };
    },
    async advance(ms) {
      const r = await server.api('POST', '/api/debug/clock', { advanceMs: ms });
      if (r.status !== 200) throw new Error(`advancing the clock failed: ${JSON.stringify(r)}`);
    },
    async stop() {
      started.child.kill('SIGTERM');
      return started.result;
    },
    async kill9() {
      started.child.kill('SIGKILL');
      return started.result;
    },
  };
  return server;
}

/** Polls a job until `done` says so; returns the last view. */
export async function waitForJob(
  server: ServerProcess,
  id: string,
  done: (job: any) => boolean,
  timeoutMs = 120_000,
): Promise<any> {
  let last: any;
  await poll(
    async () => {
      last = (await server.api('GET', `/api/jobs/${id}`)).body;
      return done(last);
    },
    timeoutMs,
    `job ${id}`,
  );
  return last;
}

/** True for a job in a final state. */
export function ended(job: { state: string }): boolean {
  return ['completed', 'completed_with_warnings', 'failed', 'cancelled'].includes(job.state);
}

/** Creates the policy most server tests use: daily at 03:00, seven daily points kept. */
export async function createDailyPolicy(server: ServerProcess, name = 'p'): Promise<void> {
  await server.json(['policy', 'create', name, '--schedule', 'daily 03:00', '--retain-daily', '7']);
}
