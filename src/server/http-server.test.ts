import { request as httpRequest } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import fc from 'fast-check';
import type { InjectOptions } from 'fastify';
import { pino } from 'pino';
import { Counter, Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ERROR_CODES, HTTP_STATUS } from '../core/index.js';
import { buildHttpServer, type HttpServer, type HttpServerOptions } from './http-server.js';
import { defineRoute, type Route } from './route.js';
import { GOOD_TOKEN, authenticate, thingRoutes } from './things.testkit.js';

const AUTH = { authorization: `Bearer ${GOOD_TOKEN}` };
const VALID_THING = {
  name: 'alpha',
  size: 3,
  tags: ['x'],
  spec: { color: 'red', dims: { width: 1, height: 2 } },
};

const servers: HttpServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.closeGracefully()));
});

/** A server over the sample routes (plus `extra`), with its log lines captured. */
function sampleServer(options: Partial<HttpServerOptions> & { extra?: Route[] } = {}) {
  const lines: string[] = [];
  const logger = pino({ level: 'trace' }, { write: (line: string) => void lines.push(line) });
  const app = buildHttpServer({
    routes: [...thingRoutes(), ...(options.extra ?? [])],
    authenticate,
    logger,
    ...options,
  });
  servers.push(app);
  return { app, lines, log: () => lines.join('') };
}

/** A route whose schema takes any string as a path parameter; records what reached it. */
function laxRoute() {
  const reached: string[] = [];
  const lax = defineRoute({
    method: 'GET',
    url: '/api/files/:path',
    operationId: 'getFile',
    summary: 'A route with a careless schema.',
    tags: ['test'],
    params: z.object({ path: z.string() }),
    handler: async ({ params }) => void reached.push(params.path),
  });
  return { lax, reached };
}

/** Injects and returns the status, the parsed JSON body (or text) and the headers. */
async function call(app: HttpServer, args: InjectOptions) {
  const response = await app.inject(args);
  let body: unknown = response.body;
  if (String(response.headers['content-type'] ?? '').startsWith('application/json')) {
    body = response.body === '' ? undefined : JSON.parse(response.body);
  }
  return { status: response.statusCode, body: body as any, headers: response.headers };
}

/** Asserts the answer is our error shape with `code`, and the status the code table gives. */
function expectError(result: { status: number; body: any }, code: string): void {
  expect(result.body?.error?.code, JSON.stringify(result.body)).toBe(code);
  expect(result.status).toBe(HTTP_STATUS[code as keyof typeof HTTP_STATUS]);
  expect(typeof result.body.error.message).toBe('string');
  expect(Object.keys(result.body).sort()).toEqual(['error']);
}

describe('authentication', () => {
  it('refuses /api without a token, with a wrong one, or with another scheme, and never logs it', async () => {
    const { app, log } = sampleServer();
    const wrong = 'tok-wrong-fedcba9876543210';
    for (const headers of [
      {},
      { authorization: `Bearer ${wrong}` },
      { authorization: `Basic ${GOOD_TOKEN}` },
      { authorization: 'Bearer' },
      { authorization: `Bearer ${GOOD_TOKEN} extra` },
    ]) {
      const result = await call(app, { method: 'GET', url: '/api/things', headers });
      expectError(result, 'AUTH_REQUIRED');
      expect(result.headers['www-authenticate']).toMatch(/^Bearer/);
    }
    expect((await call(app, { method: 'GET', url: '/api/things', headers: AUTH })).status).toBe(
      200,
    );
    const created = await call(app, {
      method: 'POST',
      url: '/api/things',
      headers: { ...AUTH, 'x-request-id': 'trace-42' },
      payload: VALID_THING,
    });
    expect(created.status).toBe(201);
    expect(created.body.createdBy).toBe('admin');
    expect(created.headers['x-request-id']).toBe('trace-42');

    const text = log();
    expect(text).toContain('"reqId":"trace-42"');
    expect(text).toContain('responseTime');
    expect(text).not.toContain(GOOD_TOKEN);
    expect(text).not.toContain(wrong);
  });

  it('asks for a token before saying whether an /api path exists; other endpoints are open', async () => {
    const { app } = sampleServer();
    expectError(await call(app, { method: 'GET', url: '/api/nothing-here' }), 'AUTH_REQUIRED');
    expectError(await call(app, { method: 'GET', url: '/api/openapi.json' }), 'AUTH_REQUIRED');
    expect(await call(app, { method: 'GET', url: '/healthz' })).toMatchObject({
      status: 200,
      body: { status: 'ok' },
    });
    expect(await call(app, { method: 'GET', url: '/api/public' })).toMatchObject({
      status: 200,
      body: { anonymous: true },
    });
  });

  it('answers 500 INTERNAL when authenticate itself fails', async () => {
    const { app } = sampleServer({
      authenticate: async () => {
        throw new Error('catalog is closed');
      },
    });
    expectError(await call(app, { method: 'GET', url: '/api/things', headers: AUTH }), 'INTERNAL');
  });
});

describe('validation', () => {
  const post = (app: HttpServer, payload: unknown) =>
    call(app, {
      method: 'POST',
      url: '/api/things',
      headers: { ...AUTH, 'content-type': 'application/json' },
      payload: JSON.stringify(payload),
    });

  it('refuses wrong types, unknown and missing fields, naming each path', async () => {
    const { app } = sampleServer();
    const cases: [unknown, string][] = [
      [{ ...VALID_THING, size: 'big' }, 'body.size'],
      [{ ...VALID_THING, size: 1.5 }, 'body.size'],
      [{ ...VALID_THING, extra: 1 }, 'body.extra'],
      [{ ...VALID_THING, spec: { ...VALID_THING.spec, shade: 'dark' } }, 'body.spec.shade'],
      [
        { ...VALID_THING, spec: { color: 'red', dims: { width: 1, height: 2, d: 3 } } },
        'body.spec.dims.d',
      ],
      [{ ...VALID_THING, tags: ['ok', 7] }, 'body.tags[1]'],
      [{ size: 1, spec: VALID_THING.spec }, 'body.name'],
      [{ ...VALID_THING, name: '../etc' }, 'body.name'],
    ];
    for (const [payload, path] of cases) {
      const result = await post(app, payload);
      expectError(result, 'REQUEST_INVALID');
      expect(result.body.error.details.map((d: { path: string }) => d.path)).toContain(path);
    }
  });

  it('refuses bodies that are not objects, not JSON, empty, too large or of another type', async () => {
    const { app } = sampleServer();
    for (const payload of [[VALID_THING], 'alpha', null, 42, true]) {
      expectError(await post(app, payload), 'REQUEST_INVALID');
    }
    const raw = (payload: string, headers: Record<string, string> = {}) =>
      call(app, {
        method: 'POST',
        url: '/api/things',
        headers: { ...AUTH, 'content-type': 'application/json', ...headers },
        payload,
      });
    const withCharset = await raw(JSON.stringify(VALID_THING), {
      'content-type': 'application/json; charset=utf-8',
    });
    expect(withCharset.status).toBe(201);
    expectError(await raw('{"name": "alpha",'), 'REQUEST_INVALID');
    expectError(await raw('{"__proto__": {"admin": true}}'), 'REQUEST_INVALID');
    const empty = await raw('');
    expectError(empty, 'REQUEST_INVALID');
    expect(empty.body.error.message).toMatch(/missing/);
    expectError(await raw('name=alpha', { 'content-type': 'text/plain' }), 'REQUEST_INVALID');
    expectError(
      await raw('name=alpha', { 'content-type': 'application/x-www-form-urlencoded' }),
      'REQUEST_INVALID',
    );
    expectError(
      await call(app, { method: 'POST', url: '/api/things', headers: AUTH }),
      'REQUEST_INVALID',
    );
    const huge = JSON.stringify({ ...VALID_THING, tags: ['x'.repeat(5 * 1024 * 1024)] });
    expectError(await raw(huge), 'REQUEST_TOO_LARGE');
    // A body where the route takes none.
    expectError(
      await call(app, { method: 'DELETE', url: '/api/things/alpha', headers: AUTH, payload: {} }),
      'REQUEST_INVALID',
    );
  });

  it('keeps traversal and odd names away from handlers', async () => {
    const { app } = sampleServer();
    for (const name of [
      '..',
      '.',
      '%2e%2e',
      '%2E%2E%2Fetc',
      'a%2Fb',
      'a%5Cb',
      '%00',
      'a%00b',
      'a%0Ab',
      '-start',
      'a..b',
      'x'.repeat(64),
      'x'.repeat(150),
      '%ZZ',
      '%C3%A9t%C3%A9',
    ]) {
      const result = await call(app, { method: 'GET', url: `/api/things/${name}`, headers: AUTH });
      expect(result.status, name).toBeGreaterThanOrEqual(400);
      expect(result.status, name).toBeLessThan(500);
      expect(result.body.error.code, name).toMatch(/^(REQUEST_INVALID|RESOURCE_NOT_FOUND)$/);
    }
    const job = await call(app, { method: 'GET', url: '/api/things/a/jobs/job_x', headers: AUTH });
    expect(job.body.error.details[0].path).toBe('params.id');
    expect(
      (await call(app, { method: 'GET', url: '/api/things/a/jobs/job_3k9x0c2m', headers: AUTH }))
        .body,
    ).toEqual({ thing: 'a', job: 'job_3k9x0c2m' });
  });

  it('refuses traversal in path parameters even when the route schema would take it', async () => {
    const { lax, reached } = laxRoute();
    const { app } = sampleServer({ extra: [lax] });
    // Injected URLs lose "." and ".." segments, even encoded: the socket test sends those raw.
    for (const path of ['a%2Fb', '..%2F..', '..%5C..', '%00', 'a%1Bb', 'a%7F']) {
      const result = await call(app, { method: 'GET', url: `/api/files/${path}`, headers: AUTH });
      expectError(result, 'REQUEST_INVALID');
      expect(result.body.error.details[0].path, path).toBe('params.path');
    }
    expect(reached).toEqual([]);
    expect((await call(app, { method: 'GET', url: '/api/files/a.b', headers: AUTH })).status).toBe(
      200,
    );
    expect(reached).toEqual(['a.b']);
  });

  it('coerces query numbers and refuses bad or unknown query parameters', async () => {
    const { app } = sampleServer();
    for (const name of ['a', 'b', 'c']) {
      await post(app, { ...VALID_THING, name, size: name.charCodeAt(0) - 96 });
    }
    const page = await call(app, {
      method: 'GET',
      url: '/api/things?limit=2&minSize=1',
      headers: AUTH,
    });
    expect(page.body.data.map((t: { name: string }) => t.name)).toEqual(['a', 'b']);
    expect(page.body.next).toBe('b');
    const next = await call(app, { method: 'GET', url: '/api/things?after=b', headers: AUTH });
    expect(next.body).toMatchObject({ data: [{ name: 'c' }] });
    for (const query of [
      'limit=abc',
      'limit=',
      'limit=0',
      'limit=1.5',
      'limit=1&limit=2',
      'color=red',
    ]) {
      const result = await call(app, { method: 'GET', url: `/api/things?${query}`, headers: AUTH });
      expectError(result, 'REQUEST_INVALID');
      expect(result.body.error.details[0].path).toMatch(/^query\./);
    }
    expectError(
      await call(app, { method: 'GET', url: '/api/things/a?x=1', headers: AUTH }),
      'REQUEST_INVALID',
    );
  });

  it('never answers 5xx to random JSON bodies or random names', async () => {
    const { app } = sampleServer();
    // Arbitrary JSON, and objects close to a valid thing with any field replaced or added.
    const nearlyValid = fc
      .record(
        {
          name: fc.oneof(fc.constantFrom('ok', 'a..b', ''), fc.jsonValue()),
          size: fc.oneof(fc.integer(), fc.double(), fc.jsonValue()),
          tags: fc.oneof(fc.array(fc.string()), fc.jsonValue()),
          spec: fc.oneof(fc.constant(VALID_THING.spec), fc.jsonValue()),
        },
        { requiredKeys: [] },
      )
      .chain((thing) =>
        fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 2 }).map((extra) => ({
          ...extra,
          ...thing,
        })),
      );
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.jsonValue(), nearlyValid), async (value) => {
        const result = await post(app, value);
        expect(result.status).toBeLessThan(500);
        if (result.status >= 400) expect(ERROR_CODES).toContain(result.body.error.code);
      }),
      { numRuns: 500, seed: 20240611 },
    );
    await fc.assert(
      fc.asyncProperty(fc.string({ minLength: 1, maxLength: 80, unit: 'binary' }), async (name) => {
        const url = `/api/things/${encodeURIComponent(name)}`;
        const result = await call(app, { method: 'GET', url, headers: AUTH });
        expect(result.status).toBeLessThan(500);
      }),
      { numRuns: 300, seed: 20240612 },
    );
  });
});

describe('errors', () => {
  it('answers a HoldfastError with its code and status', async () => {
    const { app } = sampleServer();
    const missing = await call(app, { method: 'GET', url: '/api/things/nope', headers: AUTH });
    expectError(missing, 'RESOURCE_NOT_FOUND');
    expect(missing.body.error.message).toContain('nope');
    const payload = VALID_THING;
    await call(app, { method: 'POST', url: '/api/things', headers: AUTH, payload });
    expectError(
      await call(app, { method: 'POST', url: '/api/things', headers: AUTH, payload }),
      'RESOURCE_EXISTS',
    );
    expect(
      (await call(app, { method: 'DELETE', url: '/api/things/alpha', headers: AUTH })).status,
    ).toBe(204);
  });

  it('answers any other error with a generic 500 and logs the real one', async () => {
    const { app, log } = sampleServer();
    const result = await call(app, { method: 'GET', url: '/api/explode', headers: AUTH });
    expectError(result, 'INTERNAL');
    expect(JSON.stringify(result.body)).not.toContain('hunter2');
    expect(result.body.error.message).toContain(String(result.headers['x-request-id']));
    expect(log()).toContain('hunter2');
  });

  it('answers unknown routes and methods with 404 RESOURCE_NOT_FOUND', async () => {
    const { app } = sampleServer();
    expectError(await call(app, { method: 'GET', url: '/nowhere' }), 'RESOURCE_NOT_FOUND');
    const badUrl = await call(app, { method: 'GET', url: '/api/things/%ZZ', headers: AUTH });
    expectError(badUrl, 'REQUEST_INVALID');
    expect(badUrl.headers['x-request-id']).toBeDefined();
    expectError(
      await call(app, { method: 'GET', url: '/api/nowhere', headers: AUTH }),
      'RESOURCE_NOT_FOUND',
    );
    const wrongMethod = await call(app, { method: 'PUT', url: '/api/things/alpha', headers: AUTH });
    expectError(wrongMethod, 'RESOURCE_NOT_FOUND');
    expect(wrongMethod.body.error.message).toContain('GET, DELETE');
  });
});

describe('server endpoints', () => {
  it('serves the OpenAPI document to authenticated callers', async () => {
    const { app } = sampleServer({ info: { version: '1.2.3' } });
    const result = await call(app, { method: 'GET', url: '/api/openapi.json', headers: AUTH });
    expect(result.status).toBe(200);
    expect(result.body.openapi).toBe('3.1.0');
    expect(result.body.info.version).toBe('1.2.3');
    expect(Object.keys(result.body.paths)).toContain('/api/things/{name}');
  });

  it('serves Prometheus metrics, including request durations', async () => {
    const metrics = new Registry();
    new Counter({
      name: 'holdfast_test_total',
      help: 'A test counter.',
      registers: [metrics],
    }).inc();
    const { app } = sampleServer({ metrics });
    await call(app, { method: 'GET', url: '/api/things', headers: AUTH });
    const result = await call(app, { method: 'GET', url: '/metrics' });
    expect(result.status).toBe(200);
    expect(result.headers['content-type']).toMatch(/^text\/plain/);
    expect(result.body).toContain('holdfast_test_total 1');
    expect(result.body).toMatch(
      /holdfast_http_request_duration_seconds_count\{method="GET",route="\/api\/things",status="200"\} 1/,
    );
    // A second server on the same registry reuses the histogram instead of failing.
    expect(() => sampleServer({ metrics })).not.toThrow();
  });

  it('reports readiness: 200 when ready, 503 when not or when the check fails', async () => {
    let report = { ok: false, checks: { catalog: 'not open' } };
    const { app } = sampleServer({ ready: async () => report });
    expect(await call(app, { method: 'GET', url: '/readyz' })).toMatchObject({
      status: 503,
      body: { status: 'not ready', checks: { catalog: 'not open' } },
    });
    report = { ok: true, checks: { catalog: 'ok' } };
    expect((await call(app, { method: 'GET', url: '/readyz' })).status).toBe(200);
    const failing = sampleServer({
      ready: async () => {
        throw new Error('boom');
      },
    });
    expect((await call(failing.app, { method: 'GET', url: '/readyz' })).status).toBe(503);
  });
});

describe('shutdown', () => {
  /** A route whose handler waits until released or aborted, and records its signal. */
  function slowRoute() {
    const started: AbortSignal[] = [];
    let release = (): void => {};
    const released = new Promise<void>((resolve) => (release = resolve));
    const route = defineRoute({
      method: 'POST',
      url: '/api/slow',
      operationId: 'slow',
      summary: 'Waits.',
      tags: ['test'],
      handler: async ({ signal }) => {
        started.push(signal);
        await Promise.race([
          released,
          new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
        ]);
        return { done: true };
      },
    });
    const waitStarted = async (count: number): Promise<void> => {
      while (started.length < count) await new Promise((r) => setTimeout(r, 5));
    };
    return { route, started, release, waitStarted };
  }

  it('lets running requests finish and refuses new ones with 503', async () => {
    const slow = slowRoute();
    const { app } = sampleServer({ extra: [slow.route] });
    const running = call(app, { method: 'POST', url: '/api/slow', headers: AUTH });
    await slow.waitStarted(1);
    const closed = app.closeGracefully({ graceMs: 60_000 });
    const refused = await call(app, { method: 'GET', url: '/api/things', headers: AUTH });
    expectError(refused, 'SERVER_SHUTTING_DOWN');
    expect(refused.headers.connection).toBe('close');
    slow.release();
    expect(await running).toMatchObject({ status: 200, body: { done: true } });
    await closed;
    expect(slow.started[0]!.aborted).toBe(false);
  });

  it('aborts handlers still running after the grace period; they answer 503', async () => {
    const slow = slowRoute();
    const { app } = sampleServer({ extra: [slow.route] });
    const running = call(app, { method: 'POST', url: '/api/slow', headers: AUTH });
    await slow.waitStarted(1);
    await app.closeGracefully({ graceMs: 10 });
    expectError(await running, 'SERVER_SHUTTING_DOWN');
    expect(slow.started[0]!.aborted).toBe(true);
  });
});

describe('over a real socket', () => {
  it('serves fetch, refuses raw traversal paths and bad HTTP, and aborts the signal when the client leaves', async () => {
    const slow = (() => {
      let onStart = (): void => {};
      let onAbort = (): void => {};
      const started = new Promise<void>((resolve) => (onStart = resolve));
      const aborted = new Promise<void>((resolve) => (onAbort = resolve));
      const route = defineRoute({
        method: 'GET',
        url: '/api/wait',
        operationId: 'waitForever',
        summary: 'Waits until the client leaves.',
        tags: ['test'],
        handler: ({ signal }) =>
          new Promise((_, reject) => {
            signal.addEventListener('abort', () => {
              onAbort();
              reject(signal.reason);
            });
            onStart();
          }),
      });
      return { route, started, aborted };
    })();
    const { lax, reached } = laxRoute();
    const { app } = sampleServer({ extra: [slow.route, lax] });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as AddressInfo;
    const base = `http://127.0.0.1:${port}`;

    const created = await fetch(`${base}/api/things`, {
      method: 'POST',
      headers: { ...AUTH, 'content-type': 'application/json' },
      body: JSON.stringify(VALID_THING),
    });
    expect(created.status).toBe(201);
    const shown = await fetch(`${base}/api/things/alpha`, { headers: AUTH });
    expect(await shown.json()).toMatchObject({ name: 'alpha', spec: { color: 'red' } });
    const unauthorized = await fetch(`${base}/api/things/alpha`);
    expect(unauthorized.status).toBe(401);
    expect(await unauthorized.json()).toMatchObject({ error: { code: 'AUTH_REQUIRED' } });

    // fetch normalises "..", so send the raw path with node:http.
    for (const path of [
      '/api/things/..',
      '/api/things/.',
      '/api/things/%2e%2e%2fetc',
      '/api/files/..',
      '/api/files/.',
      '/api/files/%2e%2e',
      '/api/files/%2E',
    ]) {
      const status = await new Promise<number>((resolve, reject) => {
        httpRequest({ host: '127.0.0.1', port, path, headers: AUTH }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
          .on('error', reject)
          .end();
      });
      expect(status, path).toBe(400);
    }
    expect(reached).toEqual([]);

    // Requests Node cannot parse still get our error shape.
    const rawExchange = (text: string) =>
      new Promise<string>((resolve, reject) => {
        let answer = '';
        const socket = connect(port, '127.0.0.1', () => socket.end(text));
        socket.on('data', (chunk) => (answer += chunk.toString()));
        socket.on('close', () => resolve(answer));
        socket.on('error', reject);
      });
    const garbage = await rawExchange('HELLO THERE\r\n\r\n');
    expect(garbage).toMatch(/^HTTP\/1\.1 400 /);
    expect(garbage).toContain('"code":"REQUEST_INVALID"');
    const bigHeaders = await rawExchange(
      `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
    );
    expect(bigHeaders).toMatch(/^HTTP\/1\.1 413 /);
    expect(bigHeaders).toContain('"code":"REQUEST_TOO_LARGE"');

    const controller = new AbortController();
    const waiting = fetch(`${base}/api/wait`, { headers: AUTH, signal: controller.signal });
    await slow.started;
    controller.abort();
    await expect(waiting).rejects.toThrow();
    await slow.aborted;
  });
});

describe('a route without schemas', () => {
  it('gets empty params and query and an undefined body', async () => {
    const seen: unknown[] = [];
    const route = defineRoute({
      method: 'POST',
      url: '/api/ping',
      operationId: 'ping',
      summary: 'Ping.',
      tags: ['test'],
      body: z.strictObject({ n: z.number() }).optional(),
      handler: async (request) => {
        seen.push(request.params, request.query, request.body);
        return 'pong';
      },
    });
    const { app } = sampleServer({ extra: [route] });
    const result = await call(app, { method: 'POST', url: '/api/ping', headers: AUTH });
    expect(result).toMatchObject({ status: 200, body: 'pong' });
    expect(seen).toEqual([{}, {}, undefined]);
  });
});
