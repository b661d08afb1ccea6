import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import {
  PAGE_QUERY,
  RESOURCE_ID,
  RESOURCE_NAME,
  defineRoute,
  type Principal,
  type Route,
} from './route.js';

const base = { operationId: 'thing', summary: 'A thing.', tags: ['t'] } as const;

describe('defineRoute', () => {
  it('fills in the defaults and freezes the route', () => {
    const route = defineRoute({
      ...base,
      method: 'GET',
      url: '/api/things',
      handler: async () => [],
    });
    expect(route).toMatchObject({ auth: true, status: 200, description: undefined });
    expect(Object.isFrozen(route)).toBe(true);
  });

  it('types params, query, body, principal and result from the schemas', () => {
    const route: Route = defineRoute({
      ...base,
      method: 'POST',
      url: '/api/things/:name/parts/:id',
      params: z.object({ name: RESOURCE_NAME, id: z.coerce.number() }),
      query: z.object({ dryRun: z.stringbool().default(false) }),
      body: z.strictObject({ sizes: z.array(z.number()), note: z.string().optional() }),
      response: z.strictObject({ ok: z.boolean() }),
      handler: async ({ params, query, body, principal, signal }) => {
        expectTypeOf(params).toEqualTypeOf<{ name: string; id: number }>();
        expectTypeOf(query.dryRun).toEqualTypeOf<boolean>();
        expectTypeOf(body.sizes).toEqualTypeOf<number[]>();
        expectTypeOf(principal).toEqualTypeOf<Principal>();
        expectTypeOf(signal).toEqualTypeOf<AbortSignal>();
        return { ok: true };
      },
    });
    expect(route.params).toBeDefined();
    defineRoute({
      ...base,
      method: 'GET',
      url: '/api/open',
      auth: false,
      handler: async ({ principal, params, body }) => {
        expectTypeOf(principal).toEqualTypeOf<undefined>();
        expectTypeOf(params).toEqualTypeOf<Record<string, never>>();
        expectTypeOf(body).toEqualTypeOf<undefined>();
      },
    });
    defineRoute({
      ...base,
      method: 'GET',
      url: '/api/typed',
      response: z.strictObject({ ok: z.boolean() }),
      // @ts-expect-error: the result must match the response schema
      handler: async () => ({ ok: 'yes' }),
    });
  });

  it('refuses URLs outside /api or with wildcards and regular expressions', () => {
    for (const url of [
      '/things',
      '/api',
      '/api/',
      '/api/*',
      '/api/x/:id(\\d+)',
      '/api//x',
      'api/x',
    ]) {
      expect(
        () => defineRoute({ ...base, method: 'GET', url, handler: async () => 1 }),
        url,
      ).toThrow(/URL/);
    }
    expect(() =>
      defineRoute({
        ...base,
        operationId: 'Bad-Id',
        method: 'GET',
        url: '/api/x',
        handler: async () => 1,
      }),
    ).toThrow(/operationId/);
  });

  it('makes params name exactly the URL parameters', () => {
    expect(() =>
      // @ts-expect-error: the URL has :name, so params is required
      defineRoute({ ...base, method: 'GET', url: '/api/x/:name', handler: async () => 1 }),
    ).toThrow(/name/);
    expect(() =>
      defineRoute({
        ...base,
        method: 'GET',
        url: '/api/x/:name',
        params: z.object({ name: RESOURCE_NAME, extra: z.string() }),
        handler: async () => 1,
      }),
    ).toThrow(/exactly/);
    expect(() =>
      defineRoute({
        ...base,
        method: 'GET',
        url: '/api/x',
        params: z.object({ name: RESOURCE_NAME }) as never,
        handler: async () => 1,
      }),
    ).toThrow(/exactly/);
  });

  it('makes top-level objects strict and keeps their refinements and explicit looseness', () => {
    const route = defineRoute({
      ...base,
      method: 'POST',
      url: '/api/x',
      query: z.object({ a: z.string().optional() }),
      body: z.object({ a: z.number() }).refine((v) => v.a !== 13, 'unlucky'),
      handler: async () => 1,
    });
    expect(route.query!.safeParse({ b: '1' }).success).toBe(false);
    expect(route.body!.safeParse({ a: 1, b: 2 }).success).toBe(false);
    expect(route.body!.safeParse({ a: 13 }).success).toBe(false);
    expect(route.body!.safeParse({ a: 1 }).success).toBe(true);
    const loose = defineRoute({
      ...base,
      method: 'POST',
      url: '/api/x',
      body: z.looseObject({ a: z.number() }),
      handler: async () => 1,
    });
    expect(loose.body!.safeParse({ a: 1, b: 2 }).success).toBe(true);
  });

  it('refuses nested objects that would drop unknown keys, wherever they hide', () => {
    const nested = {
      'body.inner': z.strictObject({ inner: z.object({ a: z.number() }) }),
      'body.list[]': z.strictObject({ list: z.array(z.object({ a: z.number() })) }),
      'body.maybe': z.strictObject({ maybe: z.object({ a: z.number() }).nullable().optional() }),
      'body.either': z.strictObject({ either: z.union([z.string(), z.object({ a: z.number() })]) }),
      'body.map.*': z.strictObject({ map: z.record(z.string(), z.object({ a: z.number() })) }),
      body: z.object({ a: z.number() }).optional(),
    };
    for (const [path, body] of Object.entries(nested)) {
      expect(
        () => defineRoute({ ...base, method: 'POST', url: '/api/x', body, handler: async () => 1 }),
        path,
      ).toThrow(`${path} would drop unknown keys`);
    }
  });
});

describe('RESOURCE_NAME', () => {
  it.each(['a', 'vault-1', 'My.Vault_2', '0', 'a.b', 'x'.repeat(63), 'name.'])(
    'accepts %j',
    (name) => {
      expect(RESOURCE_NAME.safeParse(name).success).toBe(true);
    },
  );
  it.each([
    '',
    '.',
    '..',
    'a..b',
    '../etc',
    '.hidden',
    '-a',
    '_a',
    'a/b',
    'a\\b',
    'a\0b',
    'a b',
    'é',
    'x'.repeat(64),
  ])('refuses %j', (name) => {
    expect(RESOURCE_NAME.safeParse(name).success).toBe(false);
  });
});

describe('RESOURCE_ID', () => {
  it.each(['job_3k9x0c2m', 'vault_' + 'a'.repeat(40)])('accepts %j', (id) => {
    expect(RESOURCE_ID.safeParse(id).success).toBe(true);
  });
  it.each([
    'job_',
    'job_abc',
    'JOB_3k9x0c2m',
    'job-3k9x0c2m',
    '_3k9x0c2m',
    'job_3K9X0C2M',
    'job_' + 'a'.repeat(41),
  ])('refuses %j', (id) => {
    expect(RESOURCE_ID.safeParse(id).success).toBe(false);
  });
});

describe('PAGE_QUERY', () => {
  const query = z.strictObject(PAGE_QUERY);
  it('coerces limit from the query string and bounds it', () => {
    expect(query.parse({ limit: '20', after: 'b' })).toEqual({ limit: 20, after: 'b' });
    for (const limit of ['0', '1001', '2.5', 'ten', '']) {
      expect(query.safeParse({ limit }).success, limit).toBe(false);
    }
  });
});
