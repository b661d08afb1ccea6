import { tokenPrincipal } from './token-principal.js';
import { vaultObjectRoutes } from './vault-object-routes.js';
import { pino, type Logger } from 'pino';
import { ControlPlane } from '../app/index.js';
import { ManualClock, systemClock, HoldfastError } from '../core/index.js';
import { ControlPlaneMetrics } from './control-plane-metrics.js';
import { buildHttpServer } from './http-server.js';
import { REDACTED_LOG_PATHS } from './http-logger.js';
import { apiRoutes } from './routes/api-routes.js';

/** How `holdfast server` is started. */
export interface ServerOptions {
  /** Catalog, keys, snapshot store, admin token. Created if missing. */
  readonly dataDir: string;
  /** `host:port` to listen on; port 0 picks a free port (tests). */
  readonly listen: string;
  /**
   * Test mode: start the clock at this epoch-ms time and let `POST /api/debug/clock` move it,
   * so a test can run a schedule through months in seconds. Never set in production.
   */
  readonly fakeClockStart?: number;
  /** pino level: 'info' by default. */
  readonly logLevel?: string;
  /** Where JSON log lines go (default stdout). */
  readonly logDestination?: NodeJS.WritableStream;
  /** Alert when a GRS vault's secondary is behind longer than this (default 3600). */
  readonly replicationLagAlertSeconds?: number;
  /** Job settings (defaults: 2 at once, 3 retries, first retry after a minute). */
  readonly jobs?: { maxConcurrent?: number; retries?: number; retryDelayMs?: number };
}

/** A running server. */
export interface RunningServer {
  /** Base URL, e.g. `http://127.0.0.1:8440`. */
  readonly url: string;
  /** Where the admin token was written on first start (undefined when it already existed). */
  readonly adminTokenCreated: string | undefined;
  /** Stops taking requests, interrupts running jobs (retried on next start), closes the catalog. */
  stop(): Promise<void>;
}

/** Starts catalog, scheduler, workers and REST API in this process. */
export async function runServer(options: ServerOptions): Promise<RunningServer> {
  const { host, port } = parseListen(options.listen);
  const logger: Logger = pino(
    {
      level: options.logLevel ?? 'info',
      base: { service: 'holdfast' },
      redact: { paths: [...REDACTED_LOG_PATHS], censor: '[redacted]' },
    },
    options.logDestination ?? process.stdout,
  );
  const clock =
    options.fakeClockStart !== undefined ? new ManualClock(options.fakeClockStart) : systemClock;
  const metrics = new ControlPlaneMetrics();
  const plane = await ControlPlane.open({
    dataDir: options.dataDir,
    clock,
    log: (level, message, fields) => logger[level](fields, message),
    ...(options.jobs?.maxConcurrent !== undefined
      ? { maxConcurrentJobs: options.jobs.maxConcurrent }
      : {}),
    ...(options.jobs?.retries !== undefined ? { jobRetries: options.jobs.retries } : {}),
    ...(options.jobs?.retryDelayMs !== undefined
      ? { retry: { baseDelayMs: options.jobs.retryDelayMs, maxDelayMs: 3_600_000 } }
      : {}),
    onJobFinished: (job) => metrics.jobFinished(job),
    ...(options.replicationLagAlertSeconds !== undefined
      ? { replicationLagAlertSeconds: options.replicationLagAlertSeconds }
      : {}),
  });
  metrics.attach(plane);
  const http = buildHttpServer({
    routes: apiRoutes(plane),
    rawRoutes: vaultObjectRoutes(plane),
    authenticate: async (secret) => {
      const token = await plane.authenticate(secret);
      return token && tokenPrincipal(token);
    },
    logger,
    metrics: metrics.registry,
    info: { version: '0.1.0' },
    ready: async () => {
      try {
        await plane.catalog.settings.get('ready-probe');
        return { ok: true, checks: { catalog: 'ok' } };
      } catch (error) {
        return { ok: false, checks: { catalog: String(error) } };
      }
    },
  });
  try {
    await http.listen({ host, port });
  } catch (error) {
    await plane.stop();
    throw new HoldfastError(
      'USAGE_INVALID',
      `Cannot listen on ${options.listen}: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  await plane.start();
  const address = http.server.address();
  const boundPort = typeof address === 'object' && address !== null ? address.port : port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${boundPort}`;
  logger.info({ url, dataDir: options.dataDir }, 'holdfast server listening');
  let stopping: Promise<void> | undefined;
  return {
    url,
    adminTokenCreated: plane.adminTokenCreated,
    stop: () =>
      (stopping ??= (async () => {
        await http.closeGracefully({ graceMs: 5_000 });
        await plane.stop();
        logger.info('holdfast server stopped');
      })()),
  };
}

function parseListen(listen: string): { host: string; port: number } {
  const match = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(listen);
  const port = Number(match?.[2]);
  if (!match || port > 65_535)
    throw new HoldfastError(
      'USAGE_INVALID',
      `--listen takes host:port (e.g. 127.0.0.1:8440), not '${listen}'.`,
    );
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port };
}
