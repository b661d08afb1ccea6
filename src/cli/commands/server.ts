import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { defaultDataDir, DEFAULT_LISTEN } from '../../app/direct.js';
import { HoldfastError } from '../../core/index.js';
import type { ServerOptions } from '../../server/index.js';
import { EXIT, type CommandContext, type Runner } from '../context.js';

interface ServerFlags {
  listen?: string;
  logLevel?: string;
  fakeClock?: string;
  maxJobs: string;
  jobRetries: string;
  retryDelay: string;
  lagAlert: string;
}

/** Registers `holdfast server`. */
export function registerServer(program: Command, run: Runner): void {
  program
    .command('server')
    .summary('run the Holdfast server: catalog, scheduler, jobs and REST API')
    .description(
      'Runs the control plane in this process: the catalog (SQLite in the data directory), the scheduler that ' +
        'turns policies into backup jobs, the workers that run them, and the REST API the other commands talk ' +
        'to. On its first start it writes an admin token to <data-dir>/admin.token (mode 0600); the CLI on ' +
        'this host reads it from there. Logs are JSON lines on stdout. Ctrl-C or SIGTERM stops it gracefully: ' +
        'it takes no new requests and lets running jobs checkpoint; a second Ctrl-C ends it at once.',
    )
    .option(
      '--data-dir <dir>',
      'catalog, keys, snapshots and admin token (default: $HOLDFAST_DATA_DIR or ~/.local/share/holdfast)',
    )
    .option(
      '--listen <host:port>',
      `address of the REST API; port 0 picks a free one (default: ${DEFAULT_LISTEN})`,
    )
    .option('--log-level <level>', 'trace, debug, info, warn, error or fatal (default: info)')
    .option('--max-jobs <n>', 'jobs run at once on this host', '2')
    .option('--job-retries <n>', 'retries of a failed job before it fails for good', '3')
    .option(
      '--retry-delay <seconds>',
      'wait before the first retry; it doubles with each retry, up to an hour',
      '60',
    )
    .option(
      '--lag-alert <seconds>',
      "notify (vault.replication_lagging) when a GRS vault's secondary is behind longer than this",
      '3600',
    )
    .addOption(new Option('--fake-clock <time>', 'tests: start a fake clock here').hideHelp())
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  holdfast server\n' +
        '  holdfast server --data-dir /var/lib/holdfast --listen 127.0.0.1:9000\n' +
        '  HOLDFAST_SERVER=http://127.0.0.1:9000 holdfast vault list   # from another shell',
    )
    .action((flags: ServerFlags) => run((ctx) => serve(ctx, flags)));
}

/** Checks `host:port` (IPv6 hosts in brackets) and returns it unchanged. */
function parseListen(value: string): string {
  const match = /^(\[[0-9a-f:.]+\]|[^\s:[\]]+):(\d{1,5})$/i.exec(value);
  if (!match || Number(match[2]) > 65535) {
    throw new HoldfastError(
      'USAGE_INVALID',
      `--listen takes host:port, like ${DEFAULT_LISTEN} or [::1]:8440, not '${value}'.`,
    );
  }
  return value;
}

function count(option: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new HoldfastError(
      'USAGE_INVALID',
      `${option} takes a whole number from ${min} to ${max}, not '${value}'.`,
    );
  return n;
}

function parseClock(value: string): number {
  const time = Date.parse(value);
  if (Number.isNaN(time)) {
    throw new HoldfastError(
      'USAGE_INVALID',
      `--fake-clock takes an ISO time like 2025-01-01T00:00:00Z, not '${value}'.`,
    );
  }
  return time;
}

/** Resolves when `signal` is aborted (at once if it already is). */
function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((done) => signal.addEventListener('abort', () => done(), { once: true }));
}

async function serve(ctx: CommandContext, flags: ServerFlags): Promise<number> {
  const listen = parseListen(flags.listen ?? DEFAULT_LISTEN);
  const fakeClockStart = flags.fakeClock !== undefined ? parseClock(flags.fakeClock) : undefined;
  // --data-dir is also a global option (where the other commands find the admin token), so
  // commander hands it to the program wherever it is written.
  const dataDir = resolve(ctx.options.dataDir ?? defaultDataDir());
  const options: ServerOptions = {
    dataDir,
    listen,
    ...(fakeClockStart !== undefined ? { fakeClockStart } : {}),
    ...(flags.logLevel !== undefined ? { logLevel: flags.logLevel } : {}),
    replicationLagAlertSeconds: count('--lag-alert', flags.lagAlert, 1, 30 * 86_400),
    jobs: {
      maxConcurrent: count('--max-jobs', flags.maxJobs, 1, 64),
      retries: count('--job-retries', flags.jobRetries, 0, 100),
      retryDelayMs: count('--retry-delay', flags.retryDelay, 0, 86_400) * 1000,
    },
  };
  // The server stack (HTTP, catalog, scheduler, mail, metrics) loads only for this command.
  const { runServer } = await import('../../server/index.js');
  const server = await runServer(options);
  ctx.info(`holdfast server listening on ${server.url} (data directory ${dataDir})`);
  if (server.adminTokenCreated !== undefined) {
    ctx.info(
      `admin token written to ${server.adminTokenCreated} (mode 0600): the CLI on this host reads it ` +
        'from there; elsewhere, pass it in HOLDFAST_TOKEN or --token-file',
    );
  }
  ctx.info('stop it with Ctrl-C or SIGTERM');
  await aborted(ctx.signal);
  ctx.info('stopping: no new requests; running jobs checkpoint');
  await server.stop();
  ctx.info('stopped');
  return EXIT.ok;
}
