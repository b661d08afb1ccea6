import { z } from 'zod';
import { HoldfastError } from '../core/index.js';
import type { Principal } from './route.js';
import { PAGE_QUERY, RESOURCE_ID, RESOURCE_NAME, defineRoute, type Route } from './route.js';

// A small fake resource ("things") exercising every part of a route definition: path
// parameters, a coerced numeric query, a nested body, 201/204 answers and handler errors.

/** The tokens the sample server accepts, and who they belong to. */
export const TOKENS: Readonly<Record<string, Principal>> = {
  'tok-admin-0123456789abcdef': { tokenId: 'tok_admin1', name: 'admin' },
};
export const GOOD_TOKEN = 'tok-admin-0123456789abcdef';

/** The `authenticate` of the sample server. */
export async function authenticate(token: string): Promise<Principal | undefined> {
  return TOKENS[token];
}

const THING = z.strictObject({
  name: RESOURCE_NAME,
  size: z.number().int().min(0),
  tags: z.array(z.string().max(20)).max(10),
  spec: z.strictObject({
    color: z.enum(['red', 'blue']),
    dims: z.strictObject({ width: z.number().positive(), height: z.number().positive() }),
  }),
  createdBy: z.string(),
});
type Thing = z.infer<typeof THING>;

const CREATE_THING = z.object({
  name: RESOURCE_NAME,
  size: z.number().int().min(0),
  tags: z.array(z.string().max(20)).max(10).default([]),
  spec: THING.shape.spec,
});

/** The sample routes over one in-memory store; `explode` throws a plain error. */
export function thingRoutes(store = new Map<string, Thing>()): Route[] {
  return [
    defineRoute({
      method: 'POST',
      url: '/api/things',
      operationId: 'createThing',
      summary: 'Create a thing.',
      tags: ['things'],
      body: CREATE_THING,
      response: THING,
      status: 201,
      handler: async ({ body, principal }) => {
        if (store.has(body.name)) {
          throw new HoldfastError('RESOURCE_EXISTS', `A thing named ${body.name} exists.`);
        }
        const thing = { ...body, createdBy: principal.name };
        store.set(thing.name, thing);
        return thing;
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/api/things',
      operationId: 'listThings',
      summary: 'List things, smallest size first.',
      tags: ['things'],
      query: z.object({
        ...PAGE_QUERY,
        minSize: z.coerce.number().int().min(0).optional().describe('Only things this big.'),
      }),
      response: z.strictObject({ data: z.array(THING), next: z.string().optional() }),
      handler: async ({ query }) => {
        const all = [...store.values()]
          .filter((t) => t.size >= (query.minSize ?? 0))
          .filter((t) => query.after === undefined || t.name > query.after)
          .sort((a, b) => a.name.localeCompare(b.name));
        const data = all.slice(0, query.limit ?? 100);
        const last = data.at(-1);
        return data.length < all.length && last ? { data, next: last.name } : { data };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/api/things/:name',
      operationId: 'getThing',
      summary: 'Show one thing.',
      tags: ['things'],
      params: z.object({ name: RESOURCE_NAME }),
      response: THING,
      handler: async ({ params }) => {
        const thing = store.get(params.name);
        if (!thing)
          throw new HoldfastError('RESOURCE_NOT_FOUND', `No thing is named ${params.name}.`);
        return thing;
      },
    }),
    defineRoute({
      method: 'DELETE',
      url: '/api/things/:name',
      operationId: 'deleteThing',
      summary: 'Delete a thing.',
      tags: ['things'],
      params: z.object({ name: RESOURCE_NAME }),
      status: 204,
      handler: async ({ params }) => {
        if (!store.delete(params.name)) {
          throw new HoldfastError('RESOURCE_NOT_FOUND', `No thing is named ${params.name}.`);
        }
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/api/things/:name/jobs/:id',
      operationId: 'getThingJob',
      summary: 'Show a job of a thing.',
      tags: ['things', 'jobs'],
      params: z.object({ name: RESOURCE_NAME, id: RESOURCE_ID }),
      handler: async ({ params }) => ({ thing: params.name, job: params.id }),
    }),
    defineRoute({
      method: 'GET',
      url: '/api/explode',
      operationId: 'explode',
      summary: 'Fails with a plain error holding a secret.',
      tags: ['test'],
      handler: async () => {
        throw new Error('database password is hunter2');
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/api/public',
      operationId: 'getPublic',
      summary: 'Needs no token.',
      tags: ['test'],
      auth: false,
      handler: async ({ principal }) => ({ anonymous: principal === undefined }),
    }),
  ];
}
