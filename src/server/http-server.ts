import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import type { Logger, LoggerOptions } from 'pino';
import type { Registry } from 'prom-client';
import { HTTP_STATUS, HoldfastError, type ErrorCode } from '../core/index.js';
import { authenticateHeader, needsAuth, pathOf, type Authenticate } from './bearer-auth.js';
import { toHttpError } from './http-errors.js';
import { httpLogger } from './http-logger.js';
import { HTTP_METHODS, type Principal, type Route } from './route.js';
import { InFlight, JSON_TYPE, runRoute, runTracked } from './route-runner.js';
import { serveServerEndpoints, type ReadinessReport } from './server-endpoints.js';

export type { Authenticate } from './bearer-auth.js';
export type { ReadinessReport } from './server-endpoints.js';

/** The inputs of {@link buildHttpServer}. */
export interface HttpServerOptions {
  readonly routes: readonly Route[];
  /** Resolves a bearer token; see {@link Authenticate}. */
  readonly authenticate: Authenticate;
  /**
   * Pino options for a new logger, which redacts the Authorization header; or a logger, whose
   * own `redact` should include `REDACTED_LOG_PATHS` of `http-logger.ts`.
   */
  readonly logger: Logger | LoggerOptions;
  /** Largest request body accepted; default 1 MiB. Larger ones get 413 REQUEST_TOO_LARGE. */
  readonly bodyLimitBytes?: number;
  /** Served at `GET /metrics` (no auth), with the server's request-duration histogram added. */
  readonly metrics?: Registry;
  /** Checked by `GET /readyz`: 200 when `ok`, else 503. Without it, always ready. */
  readonly ready?: () => Promise<ReadinessReport>;
  /** The version shown in the OpenAPI document. */
  readonly info?: { readonly version: string };
  /**
   * Adds routes that answer with raw bytes rather than JSON (the vault object endpoint). They
   * are authenticated like every `/api/` route; see {@link RawRouteContext}.
   */
  readonly rawRoutes?: (app: FastifyInstance, context: RawRouteContext) => void;
}

/** What {@link HttpServerOptions.rawRoutes} get to serve a request as the JSON routes are. */
export interface RawRouteContext {
  /** The authenticated caller of a request under `/api/`. */
  principalOf(request: FastifyRequest): Principal;
  /** Runs `work` as the JSON routes' handlers run (see `runTracked`). */
  track<T>(reply: FastifyReply, work: (signal: AbortSignal) => Promise<T>): Promise<T>;
}

/** Options of {@link HttpServer.closeGracefully}. */
export interface CloseOptions {
  /** How long running handlers may take before their signals abort; default 10 s. */
  readonly graceMs?: number;
}

/** The Fastify instance {@link buildHttpServer} returns, not yet listening. */
export type HttpServer = FastifyInstance & {
  /**
   * Stops the server: new requests get 503 SERVER_SHUTTING_DOWN at once; running handlers
   * get `graceMs` to finish, then their signals abort (they answer 503); then the server closes.
   * Fastify's own `close()` also refuses new requests with 503 but never aborts handlers.
   */
  closeGracefully(options?: CloseOptions): Promise<void>;
};

const DEFAULT_BODY_LIMIT = 1024 * 1024;
const DEFAULT_GRACE_MS = 10_000;
/** After aborting, how long handlers get to notice before connections are cut. */
const ABORT_SETTLE_MS = 5_000;
/** After the last handler settled, how long answers get to flush before connections are cut. */
const LINGER_MS = 1_000;
/** A client's `X-Request-Id` is reused when it is this tame; otherwise a new id is made. */
const CLIENT_REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/**
 * Builds the REST API server: the routes, bearer authentication on everything under `/api/`,
 * validation with the routes' zod schemas, one error shape (`docs/api-conventions.md`),
 * `/healthz`, `/readyz`, `/metrics` and `/api/openapi.json`. The caller calls `listen`.
 */
export function buildHttpServer(options: HttpServerOptions): HttpServer {
  const app = Fastify({
    loggerInstance: httpLogger(options.logger) as FastifyBaseLogger,
    bodyLimit: options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && CLIENT_REQUEST_ID.test(given) ? given : randomUUID();
    },
    // Fastify's own answers for these have its shape, not ours: take them over.
    return503OnClosing: false,
    frameworkErrors: (error, request, reply) => sendError(request, reply, error),
    clientErrorHandler: answerClientError,
  });
  const state: ServerState = { shuttingDown: false, inFlight: new InFlight() };
  const principals = new WeakMap<FastifyRequest, Principal>();
  acceptJsonBodiesOnly(app);
  guardRequests(app, options, state, principals);
  for (const route of options.routes) {
    app.route({
      method: route.method,
      url: route.url,
      handler: (request, reply) =>
        runRoute(route, request, reply, principals.get(request), state.inFlight),
    });
  }
  options.rawRoutes?.(app, {
    principalOf: (request) => {
      const principal = principals.get(request);
      if (principal === undefined)
        throw new HoldfastError('INTERNAL', 'Request not authenticated.');
      return principal;
    },
    track: (reply, work) => runTracked(reply, state.inFlight, work),
  });
  serveServerEndpoints(app, options);
  let closing: Promise<void> | undefined;
  const closeGracefully = ({ graceMs = DEFAULT_GRACE_MS }: CloseOptions = {}): Promise<void> =>
    (closing ??= shutDown(app, state, graceMs));
  return Object.assign(app, { closeGracefully });
}

interface ServerState {
  shuttingDown: boolean;
  readonly inFlight: InFlight;
}

/** Shutdown, authentication, request ids, and our answers for errors and unknown routes. */
function guardRequests(
  app: FastifyInstance,
  options: HttpServerOptions,
  state: ServerState,
  principals: WeakMap<FastifyRequest, Principal>,
): void {
  const publicRoutes = new Set(
    options.routes.filter((r) => !r.auth).map((r) => `${r.method} ${r.url}`),
  );
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    if (state.shuttingDown) throw shuttingDownError();
    if (!needsAuth(request, publicRoutes)) return;
    const header = request.headers.authorization;
    // Nothing after this point can log the token by accident: it is no longer on the request.
    delete request.headers.authorization;
    const principal = await authenticateHeader(header, options.authenticate);
    const config = request.routeOptions.config as { agentAllowed?: boolean } | undefined;
    if (principal.agentVaultId !== undefined && config?.agentAllowed !== true)
      throw new HoldfastError(
        'ACCESS_DENIED',
        `The token '${principal.name}' is an agent token: it may only read and add objects of its vault (/api/vaults/<name>/objects).`,
      );
    principals.set(request, principal);
  });
  app.addHook('onSend', async (_request, reply) => {
    if (state.shuttingDown) reply.header('connection', 'close');
  });
  app.addHook('preClose', async () => {
    state.shuttingDown = true;
  });
  app.setErrorHandler((error, request, reply) => sendError(request, reply, error));
  app.setNotFoundHandler(async (request) => {
    throw notFound(app, request.method, request.url);
  });
}

/**
 * Refuses new requests, waits up to `graceMs` for running handlers, aborts the rest, closes.
 * Connections that never sent a request would hold `close()` until their keep-alive timeout, so
 * they are cut shortly after the last answer went out.
 */
async function shutDown(app: FastifyInstance, state: ServerState, graceMs: number): Promise<void> {
  state.shuttingDown = true;
  if (!(await state.inFlight.waitForDrain(graceMs))) {
    state.inFlight.abortAll(shuttingDownError());
    if (!(await state.inFlight.waitForDrain(ABORT_SETTLE_MS))) app.server.closeAllConnections();
  }
  const closed = app.close();
  const linger = setTimeout(() => app.server.closeAllConnections(), LINGER_MS);
  try {
    await closed;
  } finally {
    clearTimeout(linger);
  }
}

function shuttingDownError(): HoldfastError {
  return new HoldfastError('SERVER_SHUTTING_DOWN', 'The server is shutting down; retry soon.');
}

function sendError(request: FastifyRequest, reply: FastifyReply, error: unknown): FastifyReply {
  const { status, body, serverFault } = toHttpError(error, request.id);
  if (serverFault) request.log.error({ err: error }, 'request failed');
  else request.log.info({ code: body.error.code }, 'request refused');
  // Framework errors (a malformed URL) come before the hooks that would have set it.
  reply.header('x-request-id', request.id);
  if (body.error.code === 'AUTH_REQUIRED') {
    reply.header('www-authenticate', 'Bearer realm="holdfast"');
  }
  return reply.code(status).type(JSON_TYPE).send(JSON.stringify(body));
}

/** Only JSON bodies; an empty one counts as no body, so the route's schema decides. */
function acceptJsonBodiesOnly(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body.length === 0) done(null, undefined);
    else parseJson(request, body.toString(), done);
  });
}

/** 404 RESOURCE_NOT_FOUND, naming the methods the path does accept when there are some. */
function notFound(app: FastifyInstance, method: string, url: string): HoldfastError {
  const path = pathOf(url);
  const shown = path.length > 200 ? `${path.slice(0, 200)}…` : path;
  const allowed = HTTP_METHODS.filter((m) => app.findRoute({ method: m, url: path }) !== null);
  if (allowed.length === 0) {
    return new HoldfastError('RESOURCE_NOT_FOUND', `There is no endpoint ${method} ${shown}.`);
  }
  return new HoldfastError(
    'RESOURCE_NOT_FOUND',
    `${shown} does not accept ${method}; it accepts ${allowed.join(', ')}.`,
  );
}

/** Answers a request Node could not even parse (bad HTTP, huge headers) in our error shape. */
function answerClientError(error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [code, message]: [ErrorCode, string] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? ['REQUEST_TOO_LARGE', 'The request headers are too large.']
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? ['REQUEST_INVALID', 'The request did not arrive in time.']
        : ['REQUEST_INVALID', 'The request is not valid HTTP/1.1.'];
  const status = HTTP_STATUS[code];
  const body = JSON.stringify({ error: { code, message } });
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: ${JSON_TYPE}\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}
