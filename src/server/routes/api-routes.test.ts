import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlPlane } from '../../app/index.js';
import { ManualClock } from '../../core/index.js';
import { buildHttpServer, type HttpServer } from '../http-server.js';
import type { Route } from '../route.js';
import { apiRoutes } from './api-routes.js';

// Every route of the real API, against a real control plane: whatever a client sends, the
// answer is a 4xx with an error code (or a success), never a 500, and never without a token.

let root: string;
let plane: ControlPlane;
let http: HttpServer;
let routes: Route[];
let token: string;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'holdfast-api-'));
  plane = await ControlPlane.open({
    dataDir: join(root, 'data'),
    clock: new ManualClock(Date.UTC(2026, 0, 5)),
  });
  routes = apiRoutes(plane);
  http = buildHttpServer({
    routes,
    authenticate: async (secret) => {
      const t = await plane.authenticate(secret);
      return t && { tokenId: t.id, name: t.name };
    },
    logger: { level: 'silent' },
  });
  token = readFileSync(join(root, 'data', 'admin.token'), 'utf8').trim();
  await plane.vaults.create({ name: 'main', passphrase: 'a long test passphrase' });
  await plane.policies.create({
    name: 'nightly',
    schedule: 'daily 02:00',
    retention: { daily: 7 },
  });
  await plane.items.protect({ name: 'docs', paths: [root], vault: 'main', policy: 'nightly' });
});

afterAll(async () => {
  await http.close();
  await plane.stop();
  rmSync(root, { recursive: true, force: true });
});

const BAD_NAMES = ['..', '%2e%2e', 'a%2Fb', '%00', 'x'.repeat(300), '-lead', 'sp%20ace', '%2e'];
const BAD_BODIES: unknown[] = [
  null,
  [],
  'text',
  42,
  true,
  { unknownField: 1 },
  { name: 123, paths: 'nope', schedule: [], retention: 'x', point: {}, target: 7 },
  { name: '../../etc', location: '/tmp/x', passphrase: 'long enough passphrase' },
  { name: 'ok', paths: ['relative/path'], vault: 'main', policy: 'nightly' },
  { a: { b: { c: { d: { e: [1, 2, { f: 'deep' }] } } } } },
];

function urlFor(route: Route, value: string): string {
  return route.url.replace(/:([A-Za-z]+)/g, () => value);
}

async function send(route: Route, url: string, body: unknown, auth = true) {
  return http.inject({
    method: route.method,
    url,
    headers: {
      ...(auth ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { payload: JSON.stringify(body) } : {}),
  });
}

describe('the REST API under hostile input', () => {
  it('answers 401 with an error code to every route called without a valid token', async () => {
    for (const route of routes) {
      for (const headers of [
        {},
        { authorization: 'Bearer hf_wrong' },
        { authorization: 'Basic abc' },
      ]) {
        const r = await http.inject({ method: route.method, url: urlFor(route, 'main'), headers });
        expect(r.statusCode, `${route.method} ${route.url}`).toBe(401);
        expect(r.json().error.code).toBe('AUTH_REQUIRED');
      }
    }
  });

  it('answers 4xx with an error code to malformed bodies on every route that takes one', async () => {
    for (const route of routes.filter((r) => r.method !== 'GET' && r.method !== 'DELETE')) {
      for (const body of BAD_BODIES) {
        const r = await send(route, urlFor(route, 'nothing-here'), body);
        const where = `${route.method} ${route.url} ${JSON.stringify(body)} → ${r.statusCode} ${r.body}`;
        expect(r.statusCode, where).toBeLessThan(500);
        if (r.statusCode >= 400) expect(r.json().error.code, where).toMatch(/^[A-Z]+_[A-Z_]+$/);
      }
    }
  });

  it('refuses path traversal and oversized names in every path parameter', async () => {
    for (const route of routes.filter((r) => r.url.includes(':'))) {
      for (const name of BAD_NAMES) {
        const r = await send(route, urlFor(route, name), route.method === 'GET' ? undefined : {});
        expect(
          r.statusCode,
          `${route.method} ${urlFor(route, name)} → ${r.body}`,
        ).toBeGreaterThanOrEqual(400);
        expect(r.statusCode).toBeLessThan(500);
      }
    }
  });

  it('answers 413 to a huge body and 404 with a code to unknown routes', async () => {
    const create = routes.find((r) => r.operationId === 'createPolicy')!;
    const huge = await send(create, '/api/policies', {
      name: 'x',
      schedule: 'x'.repeat(3 << 20),
      retention: {},
    });
    expect(huge.statusCode).toBe(413);
    expect(huge.json().error.code).toBe('REQUEST_TOO_LARGE');
    const unknown = await http.inject({
      method: 'GET',
      url: '/api/nothing',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().error.code).toBe('RESOURCE_NOT_FOUND');
  });

  it('never answers 5xx to random JSON on the create routes', async () => {
    const creates = routes.filter((r) => r.method === 'POST' && !r.url.includes(':'));
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...creates), fc.jsonValue(), async (route, body) => {
        const r = await send(route, route.url, body);
        return r.statusCode < 500;
      }),
      { numRuns: 150, seed: 20261130 },
    );
  });

  it('records successful changes in the audit trail, without secrets, and nothing that failed', async () => {
    const before = (await plane.audit.list(1))[0]?.seq ?? 0;
    const create = routes.find((r) => r.operationId === 'createVault')!;
    const ok = await send(create, '/api/vaults', {
      name: 'audited',
      passphrase: 'a secret passphrase',
    });
    expect(ok.statusCode).toBe(201);
    const refused = await send(create, '/api/vaults', {
      name: 'audited',
      passphrase: 'a secret passphrase',
    });
    expect(refused.statusCode).toBe(409);
    const r = await http.inject({
      method: 'GET',
      url: '/api/events?limit=10',
      headers: { authorization: `Bearer ${token}` },
    });
    const events = (
      r.json() as {
        data: Array<{
          seq: number;
          actor: string;
          action: string;
          target: string;
          details: Record<string, unknown>;
        }>;
      }
    ).data.filter((e) => e.seq > before);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      actor: 'admin',
      action: 'createVault',
      target: 'vaults',
      details: { name: 'audited', passphrase: '***' },
    });
    expect(r.body).not.toContain('a secret passphrase');
  });

  it('answers reads in exactly the shapes the OpenAPI document declares', async () => {
    const names: Record<string, string> = { vaults: 'main', policies: 'nightly', items: 'docs' };
    await plane.items.backupNow('docs');
    for (const route of routes.filter((r) => r.method === 'GET' && r.response !== undefined)) {
      const url = route.url.replace(
        /\/api\/(\w+)\/:name/,
        (_, kind: string) => `/api/${kind}/${names[kind]}`,
      );
      if (url.includes(':')) continue;
      const r = await http.inject({
        method: 'GET',
        url,
        headers: { authorization: `Bearer ${token}` },
      });
      expect(r.statusCode, `${url} ${r.body}`).toBe(200);
      const parsed = route.response!.safeParse(r.json());
      expect(parsed.success, `${url}: ${JSON.stringify(parsed.error?.issues)}`).toBe(true);
    }
    const job = (await plane.jobs.list({}))[0]!;
    const one = routes.find((r) => r.operationId === 'getJob')!;
    const r = await http.inject({
      method: 'GET',
      url: `/api/jobs/${job.id}`,
      headers: { authorization: `Bearer ${token}` },
    });
    expect(one.response!.safeParse(r.json()).success).toBe(true);
  });

  it('audits attempts an immutable vault refuses, and keeps the data', async () => {
    const post = (url: string, body: unknown) =>
      http.inject({
        method: 'POST',
        url,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        payload: JSON.stringify(body),
      });
    expect((await post('/api/vaults/main/immutability', { state: 'locked' })).statusCode).toBe(200);
    const stop = await post('/api/items/docs/stop', { deleteData: true });
    expect(stop.statusCode).toBe(409);
    expect(stop.json().error.code).toBe('VAULT_IMMUTABLE');
    const unlock = await post('/api/vaults/main/immutability', { state: 'disabled' });
    expect(unlock.json().error.code).toBe('SETTING_LOCKED');
    const events = await plane.audit.list(3);
    expect(events.map((e) => `${e.action} ${e.target}`)).toEqual([
      'setVaultImmutability refused (SETTING_LOCKED) vaults/main/immutability',
      'stopProtection refused (VAULT_IMMUTABLE) items/docs/stop',
      'setVaultImmutability vaults/main/immutability',
    ]);
    expect((await plane.items.show('docs')).state).toBe('protected');
  });

  it('lists every route in the OpenAPI document', async () => {
    const r = await http.inject({
      method: 'GET',
      url: '/api/openapi.json',
      headers: { authorization: `Bearer ${token}` },
    });
    const doc = r.json() as { paths: Record<string, Record<string, { operationId: string }>> };
    const ids = Object.values(doc.paths).flatMap((ops) =>
      Object.values(ops).map((o) => o.operationId),
    );
    for (const route of routes) expect(ids).toContain(route.operationId);
  });
});
