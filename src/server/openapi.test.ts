import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { buildOpenApiDocument, type JsonObject, type OpenApiDocument } from './openapi.js';
import { defineRoute } from './route.js';
import { thingRoutes } from './things.testkit.js';

/** Every `$ref` in `value`, with where it was found. */
function refs(value: unknown, at = '#'): { at: string; ref: string }[] {
  if (Array.isArray(value)) return value.flatMap((item, i) => refs(item, `${at}/${i}`));
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([key, item]) =>
    key === '$ref' && typeof item === 'string' ? [{ at, ref: item }] : refs(item, `${at}/${key}`),
  );
}

/** Resolves a local JSON pointer (`#/components/schemas/Error`) in `doc`. */
function resolve(doc: unknown, ref: string): unknown {
  if (!ref.startsWith('#/')) return undefined;
  return ref
    .slice(2)
    .split('/')
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], doc);
}

function expectRefsResolve(doc: OpenApiDocument): void {
  for (const { at, ref } of refs(doc)) expect(resolve(doc, ref), `${ref} at ${at}`).toBeDefined();
}

const op = (doc: OpenApiDocument, path: string, method: string): JsonObject => {
  const found = doc.paths[path]?.[method];
  if (found === undefined) throw new Error(`no ${method} ${path}`);
  return found;
};

describe('buildOpenApiDocument', () => {
  const routes = thingRoutes();
  const doc = buildOpenApiDocument(routes, { version: '2.0.0' });

  it('is an OpenAPI 3.1 document with bearer security and the error schema', () => {
    expect(JSON.parse(JSON.stringify(doc))).toEqual(doc);
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info.version).toBe('2.0.0');
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({
      type: 'http',
      scheme: 'bearer',
    });
    expect(doc.security).toEqual([{ bearerAuth: [] }]);
    expect(doc.components.schemas.Error).toMatchObject({ required: ['error'] });
    expectRefsResolve(doc);
  });

  it('lists every route under its OpenAPI path with its operationId, summary and tags', () => {
    for (const route of routes) {
      const path = route.url.replace(/:(\w+)/g, '{$1}');
      expect(op(doc, path, route.method.toLowerCase())).toMatchObject({
        operationId: route.operationId,
        summary: route.summary,
        tags: [...route.tags],
      });
    }
    expect(doc.tags.map((t) => t.name)).toEqual(['things', 'jobs', 'test', 'server']);
  });

  it('describes path and query parameters from their schemas', () => {
    expect(op(doc, '/api/things/{name}/jobs/{id}', 'get').parameters).toEqual([
      expect.objectContaining({ name: 'name', in: 'path', required: true }),
      expect.objectContaining({
        name: 'id',
        in: 'path',
        required: true,
        schema: expect.objectContaining({ pattern: '^[a-z]+_[0-9a-z]{6,40}$' }),
      }),
    ]);
    const list = op(doc, '/api/things', 'get').parameters as JsonObject[];
    expect(list.map((p) => [p.name, p.in, p.required])).toEqual([
      ['limit', 'query', false],
      ['after', 'query', false],
      ['minSize', 'query', false],
    ]);
    expect(list[0]!.schema).toMatchObject({ type: 'integer', minimum: 1, maximum: 1000 });
    expect(list[2]!.description).toBe('Only things this big.');
  });

  it('describes bodies, success answers and error answers', () => {
    const create = op(doc, '/api/things', 'post');
    const body = (create.requestBody as any).content['application/json'].schema;
    expect((create.requestBody as JsonObject).required).toBe(true);
    expect(body).toMatchObject({
      type: 'object',
      required: ['name', 'size', 'spec'],
      additionalProperties: false,
      properties: { spec: { additionalProperties: false, required: ['color', 'dims'] } },
    });
    const responses = create.responses as Record<string, any>;
    expect(responses['201'].content['application/json'].schema.required).toContain('createdBy');
    expect(Object.keys(responses)).toEqual(['201', '400', '401', '413', '500', 'default']);
    expect(op(doc, '/api/things/{name}', 'delete').responses).toMatchObject({
      '204': { description: expect.any(String) },
      '404': { $ref: '#/components/responses/Error404' },
    });
    expect(op(doc, '/api/public', 'get').security).toEqual([]);
    expect(Object.keys(op(doc, '/api/public', 'get').responses as object)).not.toContain('401');
  });

  it('lists the server endpoints, open ones without security', () => {
    for (const path of ['/healthz', '/readyz', '/metrics']) {
      expect(op(doc, path, 'get').security, path).toEqual([]);
    }
    expect(op(doc, '/api/openapi.json', 'get').security).toBeUndefined();
    const withoutMetrics = buildOpenApiDocument(routes, { version: '1' }, { metrics: false });
    expect(withoutMetrics.paths['/metrics']).toBeUndefined();
  });

  it('copes with schemas JSON Schema cannot express, shared ids and recursion', () => {
    const Shared = z.strictObject({ label: z.string() }).meta({ id: 'SharedLabel' });
    interface Tree {
      name: string;
      children: Tree[];
    }
    const Tree: z.ZodType<Tree> = z.strictObject({
      name: z.string(),
      get children() {
        return z.array(Tree);
      },
    });
    const route = defineRoute({
      method: 'PUT',
      url: '/api/odd/:name',
      operationId: 'putOdd',
      summary: 'Odd schemas.',
      tags: ['odd'],
      params: z.object({ name: z.string().transform((s) => s.toUpperCase()) }),
      query: z.object({ verbose: z.stringbool().optional() }),
      body: z.object({ when: z.iso.datetime(), a: Shared, b: Shared, tree: Tree }),
      response: z.object({ at: z.date(), size: z.bigint(), tree: Tree }),
      handler: async () => ({ at: new Date(), size: 1n, tree: { name: 'r', children: [] } }),
    });
    const odd = buildOpenApiDocument([route], { version: '1' });
    expectRefsResolve(odd);
    const put = op(odd, '/api/odd/{name}', 'put');
    const body = (put.requestBody as any).content['application/json'].schema;
    expect(body.properties.a).toEqual({ $ref: '#/components/schemas/SharedLabel' });
    expect(odd.components.schemas.SharedLabel).toMatchObject({ required: ['label'] });
    expect((put.parameters as JsonObject[])[0]!.schema).toMatchObject({ type: 'string' });
    const answer = (put.responses as any)['200'].content['application/json'].schema;
    expect(answer.properties.at).toEqual({});
    expect(JSON.stringify(odd)).not.toContain('$defs');

    const recursive = defineRoute({
      method: 'POST',
      url: '/api/trees',
      operationId: 'createTree',
      summary: 'A recursive body.',
      tags: ['odd'],
      body: Tree,
      handler: async () => undefined,
    });
    const trees = buildOpenApiDocument([recursive], { version: '1' });
    expectRefsResolve(trees);
    const treeBody = (op(trees, '/api/trees', 'post').requestBody as any).content[
      'application/json'
    ].schema;
    expect(treeBody).toEqual({ $ref: '#/components/schemas/createTree.body' });
    expect(JSON.stringify(trees.components.schemas['createTree.body'])).toContain(
      '"$ref":"#/components/schemas/createTree.body"',
    );
  });

  it('refuses an operationId used twice, or one of the server endpoints', () => {
    const twice = [...routes, routes[0]!];
    expect(() => buildOpenApiDocument(twice, { version: '1' })).toThrow(/createThing/);
    const health = defineRoute({
      method: 'GET',
      url: '/api/health',
      operationId: 'getHealth',
      summary: 'Clash.',
      tags: [],
      handler: async () => 'ok',
    });
    expect(() => buildOpenApiDocument([health], { version: '1' })).toThrow(/getHealth/);
  });
});
