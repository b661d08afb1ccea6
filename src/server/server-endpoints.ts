import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { Histogram, type Registry } from 'prom-client';
import { buildOpenApiDocument } from './openapi.js';
import type { Route } from './route.js';
import { JSON_TYPE } from './route-runner.js';

/** What `/readyz` reports: ready or not, and one line per dependency checked. */
export interface ReadinessReport {
  readonly ok: boolean;
  readonly checks: Readonly<Record<string, string>>;
}

/** What the server's own endpoints need. */
export interface ServerEndpointOptions {
  readonly routes: readonly Route[];
  readonly info?: { readonly version: string };
  readonly metrics?: Registry;
  readonly ready?: () => Promise<ReadinessReport>;
}

/** The histogram of answer times that `/metrics` shows. */
export const DURATION_METRIC = 'holdfast_http_request_duration_seconds';

/**
 * Registers `/healthz`, `/readyz`, `/api/openapi.json` and, with a registry, `/metrics` plus the
 * request-duration histogram. The OpenAPI document is built here, once, so that a route set it
 * cannot describe fails at start-up.
 */
export function serveServerEndpoints(app: FastifyInstance, options: ServerEndpointOptions): void {
  const openApiText = JSON.stringify(
    buildOpenApiDocument(options.routes, options.info ?? { version: '0.0.0' }, {
      metrics: options.metrics !== undefined,
    }),
  );
  app.get('/healthz', async (_request, reply) => reply.type(JSON_TYPE).send('{"status":"ok"}'));
  app.get('/readyz', async (request, reply) => {
    const report = await readiness(options.ready, request.log);
    return reply
      .code(report.ok ? 200 : 503)
      .type(JSON_TYPE)
      .send(JSON.stringify({ status: report.ok ? 'ready' : 'not ready', checks: report.checks }));
  });
  app.get('/api/openapi.json', async (_request, reply) => reply.type(JSON_TYPE).send(openApiText));
  if (options.metrics !== undefined) serveMetrics(app, options.metrics);
}

async function readiness(
  ready: ServerEndpointOptions['ready'],
  log: FastifyBaseLogger,
): Promise<ReadinessReport> {
  if (ready === undefined) return { ok: true, checks: {} };
  try {
    return await ready();
  } catch (error) {
    log.error({ err: error }, 'readiness check failed');
    return { ok: false, checks: { server: 'the readiness check failed; see the server log' } };
  }
}

function serveMetrics(app: FastifyInstance, registry: Registry): void {
  // Several servers (tests, restarts in one process) may share a registry.
  const existing = registry.getSingleMetric(DURATION_METRIC);
  const duration =
    existing instanceof Histogram
      ? existing
      : new Histogram({
          name: DURATION_METRIC,
          help: 'Time to answer an HTTP request, by method, route pattern and status.',
          labelNames: ['method', 'route', 'status'] as const,
          registers: [registry],
        });
  app.addHook('onResponse', async (request, reply) => {
    duration.observe(
      {
        method: request.method,
        // The pattern, never the raw URL: label values must stay few.
        route: request.routeOptions.url ?? 'unmatched',
        status: String(reply.statusCode),
      },
      reply.elapsedTime / 1000,
    );
  });
  app.get('/metrics', async (_request, reply) =>
    reply.type(registry.contentType).send(await registry.metrics()),
  );
}
