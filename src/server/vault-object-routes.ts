import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { ControlPlane, ObjectCaller } from '../app/index.js';
import { HoldfastError } from '../core/index.js';
import type { RawRouteContext } from './http-server.js';
import type { Principal } from './route.js';
import { JSON_TYPE } from './route-runner.js';

/** Largest object accepted: packs are a few MiB; this leaves room for any configured size. */
export const MAX_OBJECT_BYTES = 512 * 1024 * 1024;
const OCTETS = 'application/octet-stream';
const BASE = '/api/vaults/:name/objects';

const LIST_QUERY = z
  .object({
    prefix: z.string().max(1024).default(''),
    after: z.string().max(1024).optional(),
    limit: z.coerce.number().int().min(1).max(5000).optional(),
  })
  .strict();

/**
 * The vault object endpoint (docs/agents.md, docs/api.md "Vault objects"): what a `holdfast`
 * command given `--vault http://<server>/vaults/<name>` reads and writes. Bytes in, bytes out;
 * errors in the API's JSON shape. Agent tokens may use these routes and no others.
 */
export function vaultObjectRoutes(plane: ControlPlane) {
  return (app: FastifyInstance, context: RawRouteContext): void => {
    app.addContentTypeParser(
      OCTETS,
      { parseAs: 'buffer', bodyLimit: MAX_OBJECT_BYTES },
      (_r, body, done) => done(null, body),
    );
    const config = { agentAllowed: true };
    const caller = (request: FastifyRequest): ObjectCaller =>
      callerOf(context.principalOf(request));
    const params = (request: FastifyRequest) => request.params as { name: string; '*': string };

    app.get(BASE, { config }, async (request, reply) => {
      const query = LIST_QUERY.safeParse(request.query);
      if (!query.success)
        throw new HoldfastError('REQUEST_INVALID', `Bad listing query: ${query.error.message}`);
      const page = await context.track(reply, (signal) =>
        plane.objects.list(caller(request), params(request).name, query.data, signal),
      );
      return reply
        .type(JSON_TYPE)
        .send(JSON.stringify({ data: page.objects, ...(page.next ? { next: page.next } : {}) }));
    });

    app.head(`${BASE}/*`, { config }, async (request, reply) => {
      const { name, '*': key } = params(request);
      const info = await context.track(reply, (signal) =>
        plane.objects.stat(caller(request), name, key, signal),
      );
      return reply.header('content-length', info.size).type(OCTETS).send();
    });

    app.get(`${BASE}/*`, { config, exposeHeadRoute: false }, async (request, reply) => {
      const { name, '*': key } = params(request);
      const range = parseRange(request.headers.range);
      const data = await context.track(reply, (signal) =>
        plane.objects.get(caller(request), name, key, range, signal),
      );
      return reply
        .code(range ? 206 : 200)
        .type(OCTETS)
        .send(data);
    });

    app.put(`${BASE}/*`, { config }, async (request, reply) => {
      const { name, '*': key } = params(request);
      if (!Buffer.isBuffer(request.body))
        throw new HoldfastError('REQUEST_INVALID', `An object is sent as ${OCTETS}.`);
      const body = request.body;
      const outcome = await context.track(reply, (signal) =>
        plane.objects.put(
          caller(request),
          name,
          key,
          body,
          {
            ifNotExists: request.headers['if-none-match'] === '*',
          },
          signal,
        ),
      );
      return reply
        .code(outcome === 'created' ? 201 : 200)
        .type(JSON_TYPE)
        .send(JSON.stringify({ outcome }));
    });

    app.delete(`${BASE}/*`, { config }, async (request, reply) => {
      const { name, '*': key } = params(request);
      await context.track(reply, (signal) =>
        plane.objects.delete(caller(request), name, key, signal),
      );
      return reply.code(204).send();
    });
  };
}

function callerOf(principal: Principal): ObjectCaller {
  return principal.agentVaultId === undefined
    ? { name: principal.name, scope: 'admin', vaultId: null }
    : { name: principal.name, scope: 'agent', vaultId: principal.agentVaultId };
}

/** `bytes=<first>-<last>` (one range, both ends given), as the backend client sends it. */
function parseRange(header: string | undefined): { offset: number; length: number } | undefined {
  if (header === undefined) return undefined;
  const match = /^bytes=(\d{1,15})-(\d{1,15})$/.exec(header);
  if (match === null || Number(match[2]) < Number(match[1]))
    throw new HoldfastError(
      'REQUEST_INVALID',
      `Unsupported Range header '${header.slice(0, 60)}'; send bytes=<first>-<last>.`,
    );
  return { offset: Number(match[1]), length: Number(match[2]) - Number(match[1]) + 1 };
}
