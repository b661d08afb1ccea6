import type { FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { HoldfastError, isHoldfastError } from '../core/index.js';
import { formatPath, invalidPart, requestInvalid } from './http-errors.js';
import type { Route } from './route.js';

/** The Content-Type of every JSON answer. */
export const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * The handlers running now, so that a shutdown can wait for them to finish and then abort the
 * ones that take too long.
 */
export class InFlight {
  private readonly controllers = new Set<AbortController>();
  private readonly drainWaiters = new Set<() => void>();

  /** How many handlers are running. */
  get size(): number {
    return this.controllers.size;
  }

  /** Registers a handler about to run; its signal is the controller's. */
  start(): AbortController {
    const controller = new AbortController();
    this.controllers.add(controller);
    return controller;
  }

  /** Unregisters a handler that has settled. */
  finish(controller: AbortController): void {
    this.controllers.delete(controller);
    if (this.controllers.size === 0) for (const wake of [...this.drainWaiters]) wake();
  }

  /** Aborts every running handler with `reason`. */
  abortAll(reason: unknown): void {
    for (const controller of this.controllers) controller.abort(reason);
  }

  /** Resolves true once no handler runs, or false after `timeoutMs`. */
  waitForDrain(timeoutMs: number): Promise<boolean> {
    if (this.controllers.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const settle = (drained: boolean): void => {
        clearTimeout(timer);
        this.drainWaiters.delete(onDrain);
        resolve(drained);
      };
      const onDrain = (): void => settle(true);
      const timer = setTimeout(() => settle(false), timeoutMs);
      this.drainWaiters.add(onDrain);
    });
  }
}

/**
 * Runs a handler's `work` among the requests a shutdown waits for, with a signal that aborts
 * when the client goes away (the response closes unfinished) or the shutdown stops waiting.
 */
export async function runTracked<T>(
  reply: FastifyReply,
  inFlight: InFlight,
  work: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = inFlight.start();
  const onClose = (): void => {
    if (!reply.raw.writableFinished) {
      controller.abort(new HoldfastError('CANCELLED', 'The client closed the connection.'));
    }
  };
  reply.raw.once('close', onClose);
  try {
    return await work(controller.signal);
  } catch (error) {
    // A handler cut short by the shutdown answers 503 whatever it threw on the way out.
    if (isHoldfastError(controller.signal.reason, 'SERVER_SHUTTING_DOWN')) {
      throw controller.signal.reason;
    }
    throw error;
  } finally {
    reply.raw.off('close', onClose);
    inFlight.finish(controller);
  }
}

/**
 * Serves one request with `route`: checks the path parameters, validates params, query and body
 * with the route's schemas, runs the handler with a signal tied to the client's connection, and
 * answers with the route's status. Throws (for the error handler) on any failure.
 */
export async function runRoute(
  route: Route,
  request: FastifyRequest,
  reply: FastifyReply,
  principal: unknown,
  inFlight: InFlight,
): Promise<FastifyReply> {
  checkPathParams(request.params);
  const params = await parsePart('params', route.params, request.params);
  const query = await parsePart('query', route.query, request.query);
  const body = await parseBody(route.body, request.body);

  const result = await runTracked(reply, inFlight, (signal) =>
    route.handler({ params, query, body, principal, signal, log: request.log }),
  );
  if (route.status === 204) return reply.code(204).send();
  // Serialised here, not by Fastify, so that a string result is JSON too, never text/plain.
  return reply
    .code(route.status)
    .type(JSON_TYPE)
    .send(JSON.stringify(result ?? null));
}

// Any of these in a decoded path segment could walk out of a directory or confuse a log line.
const UNSAFE_SEGMENT = /[\u0000-\u001f\u007f/\\]/;

/**
 * Refuses path parameters that are `.` or `..` or hold `/`, `\` or control characters, whatever
 * the route's schema says: they would reach the handler already decoded (`%2F` → `/`).
 */
function checkPathParams(params: unknown): void {
  for (const [name, value] of Object.entries(params ?? {})) {
    if (typeof value !== 'string') continue;
    if (value === '.' || value === '..' || UNSAFE_SEGMENT.test(value)) {
      throw requestInvalid(`The path parameter ${name} is not a valid name or id.`, [
        {
          path: formatPath('params', [name]),
          message: 'must not be "." or "..", nor contain "/", "\\" or control characters',
        },
      ]);
    }
  }
}

async function parsePart(
  part: 'params' | 'query',
  schema: z.ZodType | undefined,
  value: unknown,
): Promise<unknown> {
  const object = (value ?? {}) as Record<string, unknown>;
  if (schema === undefined) {
    const unknown = Object.keys(object);
    if (unknown.length === 0) return {};
    throw requestInvalid(
      `This endpoint takes no ${part === 'query' ? 'query' : 'path'} parameters.`,
      unknown.map((key) => ({ path: formatPath(part, [key]), message: 'is not a known field' })),
    );
  }
  const result = await schema.safeParseAsync(object);
  if (!result.success) throw invalidPart(part, result.error.issues);
  return result.data;
}

async function parseBody(schema: z.ZodType | undefined, value: unknown): Promise<unknown> {
  if (schema === undefined) {
    if (value === undefined) return undefined;
    throw requestInvalid('This endpoint takes no request body; send none.');
  }
  const result = await schema.safeParseAsync(value);
  if (result.success) return result.data;
  if (value === undefined) {
    throw requestInvalid(
      'The request body is missing: send a JSON document with Content-Type: application/json.',
      [{ path: 'body', message: 'is required' }],
    );
  }
  throw invalidPart('body', result.error.issues);
}
