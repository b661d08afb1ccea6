import type { FastifyBaseLogger } from 'fastify';
import { z } from 'zod';
import { findStrippingObjects, type ObjectSchema } from './schema-walk.js';

export type { ObjectSchema } from './schema-walk.js';

/** The HTTP methods a route may use, written once. */
export const HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
/** One of {@link HTTP_METHODS}. */
export type HttpMethod = (typeof HTTP_METHODS)[number];

/** The success statuses a route may answer with; 204 sends no body. */
export const SUCCESS_STATUSES = [200, 201, 202, 204] as const;
/** One of {@link SUCCESS_STATUSES}. */
export type SuccessStatus = (typeof SUCCESS_STATUSES)[number];

/** Who made an authenticated request: the API token and the name it was created with. */
export interface Principal {
  readonly tokenId: string;
  readonly name: string;
  /**
   * Set for an agent token: the one vault whose objects it may read and add to. Such a token
   * may use only routes marked `config: { agentAllowed: true }` (docs/agents.md).
   */
  readonly agentVaultId?: string;
}

/**
 * What a handler receives: the validated (parsed, coerced, defaulted) params, query and body,
 * the caller, and a signal that aborts when the client disconnects or the server shuts down.
 */
export interface RouteRequest<Params, Query, Body, Caller = Principal> {
  readonly params: Params;
  readonly query: Query;
  readonly body: Body;
  /** The authenticated caller; `undefined` on routes defined with `auth: false`. */
  readonly principal: Caller;
  /** Aborted when the client goes away or the server stops waiting; pass it to all I/O. */
  readonly signal: AbortSignal;
  /** The request's logger: every line carries the request id. */
  readonly log: FastifyBaseLogger;
}

/**
 * A route as the server and the OpenAPI builder use it: made by {@link defineRoute}, which has
 * checked the URL and the schemas and filled in the defaults.
 */
export interface Route {
  readonly method: HttpMethod;
  readonly url: string;
  readonly operationId: string;
  readonly summary: string;
  readonly description: string | undefined;
  readonly tags: readonly string[];
  readonly auth: boolean;
  readonly params: ObjectSchema | undefined;
  readonly query: ObjectSchema | undefined;
  readonly body: z.ZodType | undefined;
  readonly response: z.ZodType | undefined;
  readonly status: SuccessStatus;
  readonly handler: (request: RouteRequest<unknown, unknown, unknown, unknown>) => Promise<unknown>;
}

/** The names of the `:name` parameters of a URL pattern, as a union of string literals. */
export type UrlParamNames<Url extends string> = Url extends `${string}:${infer Name}/${infer Rest}`
  ? Name | UrlParamNames<`/${Rest}`>
  : Url extends `${string}:${infer Name}`
    ? Name
    : never;

type Parsed<S> = S extends z.ZodType ? z.output<S> : Record<string, never>;
type BodyOf<S> = S extends z.ZodType ? z.output<S> : undefined;
type ResultOf<S> = S extends z.ZodType ? z.input<S> : unknown;

/** `params` is required exactly when the URL has parameters, and must name each of them. */
type ParamsField<Url extends string, P> = [UrlParamNames<Url>] extends [never]
  ? { readonly params?: undefined }
  : { readonly params: P & z.ZodObject<{ [K in UrlParamNames<Url>]: z.ZodType }> };

/** The argument of {@link defineRoute}; see `docs/api-conventions.md`. */
export type RouteDefinition<
  Url extends string,
  P extends ObjectSchema | undefined,
  Q extends ObjectSchema | undefined,
  B extends z.ZodType | undefined,
  R extends z.ZodType | undefined,
  Auth extends boolean,
> = {
  readonly method: HttpMethod;
  /** Fastify syntax under `/api/`: `/api/vaults/:name`. */
  readonly url: Url;
  /** Unique, camelCase: `getVault`. Client generators name their functions after it. */
  readonly operationId: string;
  readonly summary: string;
  readonly description?: string;
  readonly tags: readonly string[];
  /** Default true: the route needs a bearer token. */
  readonly auth?: Auth;
  /** Query values arrive as strings: use `z.coerce.number()`, `z.stringbool()`. */
  readonly query?: Q;
  readonly body?: B;
  /** Documents the answer in OpenAPI and types the handler's result; not checked at run time. */
  readonly response?: R;
  /** Default 200. */
  readonly status?: SuccessStatus;
  /** Resolves to the answer, sent as JSON (`undefined` as `null`); ignored for status 204. */
  readonly handler: (
    request: RouteRequest<
      Parsed<P>,
      Parsed<Q>,
      BodyOf<B>,
      Auth extends false ? undefined : Principal
    >,
  ) => Promise<ResultOf<R>>;
} & ParamsField<Url, P>;

const URL_PATTERN = /^\/api(\/([A-Za-z0-9._~-]+|:[A-Za-z][A-Za-z0-9_]*))+$/;
const OPERATION_ID = /^[a-z][A-Za-z0-9]*$/;

/**
 * Defines a route, typed from its schemas: the handler gets `params`, `query` and `body` as the
 * schemas' output types without casts, and must return what `response` describes.
 *
 * Checks at definition time (throws, so a wrong route fails at start-up and in tests): the URL is
 * under `/api/` with plain `:name` parameters; `params` names exactly those parameters; every
 * nested object schema rejects unknown keys. Top-level `z.object` schemas of params, query and
 * body are made strict here.
 */
export function defineRoute<
  const Url extends string,
  P extends ObjectSchema | undefined = undefined,
  Q extends ObjectSchema | undefined = undefined,
  B extends z.ZodType | undefined = undefined,
  R extends z.ZodType | undefined = undefined,
  const Auth extends boolean = true,
>(definition: RouteDefinition<Url, P, Q, B, R, Auth>): Route {
  const where = `route ${definition.operationId} (${definition.method} ${definition.url})`;
  if (!URL_PATTERN.test(definition.url)) {
    throw new Error(`${where}: the URL must be under /api/ with plain :name parameters`);
  }
  if (!OPERATION_ID.test(definition.operationId)) {
    throw new Error(`${where}: operationId must be camelCase letters and digits`);
  }
  const urlParams = [...definition.url.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]!);
  const schemaParams = Object.keys(definition.params?.shape ?? {});
  if ([...urlParams].sort().join() !== [...schemaParams].sort().join()) {
    throw new Error(
      `${where}: params must name exactly the URL's parameters (${urlParams.join(', ') || 'none'})`,
    );
  }
  const params = strictTopLevel(definition.params);
  const query = strictTopLevel(definition.query);
  const body =
    definition.body instanceof z.ZodObject ? strictTopLevel(definition.body) : definition.body;
  const stripping = [
    ...findStrippingObjects(params, 'params'),
    ...findStrippingObjects(query, 'query'),
    ...findStrippingObjects(body, 'body'),
  ];
  if (stripping.length > 0) {
    throw new Error(
      `${where}: ${stripping.join(', ')} would drop unknown keys silently; ` +
        'use z.strictObject (or z.looseObject where extra keys are wanted)',
    );
  }
  return Object.freeze({
    method: definition.method,
    url: definition.url,
    operationId: definition.operationId,
    summary: definition.summary,
    description: definition.description,
    tags: Object.freeze([...definition.tags]),
    auth: definition.auth ?? true,
    params,
    query,
    body,
    response: definition.response,
    status: definition.status ?? 200,
    // Sound: the server calls the handler only with values its schemas produced.
    handler: definition.handler as Route['handler'],
  });
}

/** A plain `z.object` (which strips unknown keys) made strict; explicit choices are kept. */
function strictTopLevel<S extends ObjectSchema | undefined>(schema: S): S {
  if (schema === undefined || schema._zod.def.catchall !== undefined) return schema;
  return schema.strict() as unknown as S;
}

/**
 * A name of a vault, policy, item or token in a URL: 1–63 letters, digits, `.`, `_` and `-`,
 * starting with a letter or digit, never containing `..`. Safe as a path segment and a file
 * name. The whole rule is one pattern, so the OpenAPI document carries it.
 */
export const RESOURCE_NAME = z
  .string()
  .min(1)
  .max(63)
  .regex(
    /^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._-]*$/,
    'must be letters, digits, ".", "_" and "-", start with a letter or digit, and not contain ".."',
  )
  .describe('A name: 1–63 letters, digits, ".", "_", "-"; starts with a letter or digit.');

/** An id made by the catalog, such as `job_3k9x0c2m8d1q7a5w`: a kind, `_`, 6–40 [0-9a-z]. */
export const RESOURCE_ID = z
  .string()
  .max(64)
  .regex(/^[a-z]+_[0-9a-z]{6,40}$/, 'must be an id such as job_3k9x0c2m8d1q7a5w')
  .describe('An id: a lowercase kind, "_", then 6–40 lowercase letters and digits.');

/**
 * The pagination query of list routes, to spread into a query schema:
 * `query: z.object({ ...PAGE_QUERY, state: ... })`. The answer is
 * `{ data: [...], next?: string }`; `next` is the `after` of the following page.
 */
export const PAGE_QUERY = {
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(1000)
    .optional()
    .describe('At most this many (1–1000).'),
  after: z.string().min(1).max(200).optional().describe('The `next` value of the previous page.'),
};
