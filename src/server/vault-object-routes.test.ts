import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlPlane } from '../app/index.js';
import {
  describeBackendConformance,
  failureCode,
} from '../backends/backend-conformance.testkit.js';
import { ServerBackend } from '../backends/index.js';
import { ManualClock } from '../core/index.js';
import { buildHttpServer, type HttpServer } from './http-server.js';
import { apiRoutes } from './routes/api-routes.js';
import { tokenPrincipal } from './token-principal.js';
import { vaultObjectRoutes } from './vault-object-routes.js';

// The vault object endpoint through a real server on 127.0.0.1 and the product's own client:
// with an admin token it is a full backend (the conformance suite); with an agent token it
// only reads and adds, and every refused change is in the audit trail.

let root: string;
let plane: ControlPlane;
let http: HttpServer;
let server: string;
let admin: string;
let agent: string;
let fixtures = 0;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'holdfast-objects-'));
  plane = await ControlPlane.open({
    dataDir: join(root, 'data'),
    clock: new ManualClock(Date.UTC(2026, 0, 5)),
  });
  http = buildHttpServer({
    routes: apiRoutes(plane),
    rawRoutes: vaultObjectRoutes(plane),
    authenticate: async (secret) => {
      const token = await plane.authenticate(secret);
      return token && tokenPrincipal(token);
    },
    logger: { level: 'silent' },
  });
  server = await http.listen({ host: '127.0.0.1', port: 0 });
  admin = readFileSync(join(root, 'data', 'admin.token'), 'utf8').trim();
  const passphrase = 'a long test passphrase';
  await plane.vaults.create({ name: 'main', location: join(root, 'main'), passphrase });
  await plane.vaults.create({ name: 'other', location: join(root, 'other'), passphrase });
  agent = (await plane.tokens.create('web01', { agentFor: 'main' })).token!;
});

afterAll(async () => {
  await http.close();
  await plane.stop();
  rmSync(root, { recursive: true, force: true });
});

describeBackendConformance('ServerBackend (admin token)', async () => {
  // A bare catalog entry on an empty directory: the suite expects an empty location.
  const name = `conformance-${++fixtures}`;
  const location = join(root, name);
  await plane.catalog.vaults.create({
    name,
    location,
    keyFile: join(root, 'unused.key'),
    vaultUid: name,
    redundancy: 'lrs',
    softDelete: { state: 'off', days: 14 },
  });
  return {
    backend: new ServerBackend({ server, vault: name, token: admin }),
    cleanup: async () => rmSync(location, { recursive: true, force: true }),
  };
});

describe('an agent token', () => {
  const as = (token: string, vault = 'main') => new ServerBackend({ server, vault, token });

  it('reads and adds objects of its vault, and a retry of the same bytes is harmless', async () => {
    const backend = as(agent);
    expect((await backend.get('holdfast.json')).length).toBeGreaterThan(0);
    await backend.put('packs/ab/abcd', Buffer.from('pack bytes'));
    await backend.put('packs/ab/abcd', Buffer.from('pack bytes'));
    expect((await backend.getRange('packs/ab/abcd', 5, 5)).toString()).toBe('bytes');
    expect(await backend.stat('packs/ab/abcd')).toEqual({ name: 'packs/ab/abcd', size: 10 });
    const listed: string[] = [];
    for await (const info of backend.list('packs/')) listed.push(info.name);
    expect(listed).toEqual(['packs/ab/abcd']);
    // Pages of two: every object once, in name order.
    for (const n of [1, 2, 3, 4, 5]) await backend.put(`index/i${n}`, Buffer.from(`${n}`));
    const paged: string[] = [];
    const small = new ServerBackend({ server, vault: 'main', token: agent, listPageSize: 2 });
    for await (const info of small.list('index/')) paged.push(info.name);
    expect(paged).toEqual(['index/i1', 'index/i2', 'index/i3', 'index/i4', 'index/i5']);
  });

  it('may take, refresh and free locks', async () => {
    const backend = as(agent);
    await backend.put('locks/l1', Buffer.from('one'));
    await backend.put('locks/l1', Buffer.from('refreshed'));
    await backend.delete('locks/l1');
    expect(await failureCode(backend.stat('locks/l1'))).toBe('BACKEND_NOT_FOUND');
  });

  it('may not delete or overwrite anything else; each attempt is audited and the data stays', async () => {
    const backend = as(agent);
    await backend.put('points/p1', Buffer.from('a point'));
    expect(await failureCode(backend.delete('points/p1'))).toBe('VAULT_APPEND_ONLY');
    expect(await failureCode(backend.put('points/p1', Buffer.from('forged')))).toBe(
      'VAULT_APPEND_ONLY',
    );
    expect(await failureCode(backend.delete('holdfast.json'))).toBe('VAULT_APPEND_ONLY');
    expect((await backend.get('points/p1')).toString()).toBe('a point');
    expect(readdirSync(join(root, 'main'))).toContain('holdfast.json');

    const events = await plane.audit.list(20);
    const refused = events.filter((e) => e.actor === 'web01').map((e) => `${e.action} ${e.target}`);
    expect(refused).toEqual([
      'deleteVaultObject refused (VAULT_APPEND_ONLY) vaults/main/objects/holdfast.json',
      'putVaultObject refused (VAULT_APPEND_ONLY) vaults/main/objects/points/p1',
      'deleteVaultObject refused (VAULT_APPEND_ONLY) vaults/main/objects/points/p1',
    ]);
  });

  it('may not touch another vault, nor any other endpoint', async () => {
    expect(await failureCode(as(agent, 'other').get('holdfast.json'))).toBe('ACCESS_DENIED');
    expect(await failureCode(as(agent, 'missing').get('holdfast.json'))).toBe('ACCESS_DENIED');
    for (const url of ['/api/vaults', '/api/tokens', '/api/items', '/api/events']) {
      const answer = await fetch(`${server}${url}`, {
        headers: { authorization: `Bearer ${agent}` },
      });
      expect(answer.status, url).toBe(403);
      expect(((await answer.json()) as { error: { code: string } }).error.code).toBe(
        'ACCESS_DENIED',
      );
    }
    const stop = await fetch(`${server}/api/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${agent}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'escalate' }),
    });
    expect(stop.status).toBe(403);
  });
});

describe('an admin token', () => {
  it('deletes through the endpoint (audited) unless the vault is immutable', async () => {
    const backend = new ServerBackend({ server, vault: 'other', token: admin });
    await backend.put('points/p1', Buffer.from('one'));
    await backend.put('points/p2', Buffer.from('two'));
    await backend.delete('points/p1');
    await plane.vaults.immutability('other', 'enabled');
    expect(await failureCode(backend.delete('points/p2'))).toBe('VAULT_IMMUTABLE');
    expect(await failureCode(backend.put('points/p2', Buffer.from('2')))).toBe('VAULT_IMMUTABLE');
    await backend.put('points/p3', Buffer.from('three'));
    expect((await backend.get('points/p2')).toString()).toBe('two');
    const actions = (await plane.audit.list(5)).map((e) => e.action);
    expect(actions).toContain('deleteVaultObject');
    expect(actions).toContain('deleteVaultObject refused (VAULT_IMMUTABLE)');
    expect(actions).toContain('putVaultObject refused (VAULT_IMMUTABLE)');
  });
});
