import { z } from 'zod';
import { describeError } from '../core/index.js';
import type { ObjectSchema, Route } from './route.js';

/** A JSON Schema or any other part of the document, as plain JSON. */
export type JsonObject = { [key: string]: unknown };

/** An OpenAPI 3.1 document, as served at `GET /api/openapi.json`. */
export interface OpenApiDocument {
  readonly openapi: '3.1.0';
  readonly info: { readonly title: string; readonly version: string; readonly description: string };
  readonly tags: readonly { readonly name: string }[];
  readonly security: readonly Record<string, readonly string[]>[];
  readonly paths: Record<string, Record<string, JsonObject>>;
  readonly components: {
    readonly securitySchemes: Record<string, JsonObject>;
    readonly schemas: Record<string, JsonObject>;
    readonly responses: Record<string, JsonObject>;
  };
}

/** Options of {@link buildOpenApiDocument}. */
export interface OpenApiOptions {
  /** List `GET /metrics`; default true. */
  readonly metrics?: boolean;
}

/** The operationIds of the server's own endpoints; routes may not reuse them. */
const SERVER_OPERATION_IDS = ['getHealth', 'getReadiness', 'getOpenApiDocument', 'getMetrics'];

const ERROR_SCHEMA: JsonObject = {
  type: 'object',
  required: ['error'],
  additionalProperties: false,
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      additionalProperties: false,
      properties: {
        code: { type: 'string', description: 'A stable code, listed in docs/errors.md.' },
        message: { type: 'string', description: 'What was wrong and what to do.' },
        details: {
          type: 'array',
          items: {
            type: 'object',
            required: ['path', 'message'],
            additionalProperties: false,
            properties: { path: { type: 'string' }, message: { type: 'string' } },
          },
        },
      },
    },
  },
};

/** The error answers an operation may list, by status. */
const ERROR_RESPONSES: Record<string, string> = {
  '400': 'The request is invalid (REQUEST_INVALID; see details) or breaks a rule of the resource.',
  '401': 'No bearer token, or an unknown or revoked one (AUTH_REQUIRED).',
  '404': 'No such resource (RESOURCE_NOT_FOUND or a more specific code).',
  '413': 'The request body is too large (REQUEST_TOO_LARGE).',
  '500': 'A bug on the server (INTERNAL); the server log has the details.',
  '503': 'The server is shutting down (SERVER_SHUTTING_DOWN) or a dependency is unavailable.',
  default: 'Any other error: conflicts (409), locks (423) and the rest of docs/errors.md.',
};

/**
 * The OpenAPI 3.1 document of `routes` plus the server's own endpoints (`/healthz`, `/readyz`,
 * `/metrics`, `/api/openapi.json`). Parameters, request bodies and success answers come from the
 * routes' zod schemas; a part zod cannot express in JSON Schema (a transform's output, a date)
 * becomes an unconstrained schema rather than an error. Throws on a repeated operationId.
 */
export function buildOpenApiDocument(
  routes: readonly Route[],
  info: { readonly version: string },
  options: OpenApiOptions = {},
): OpenApiDocument {
  const seen = new Set<string>(SERVER_OPERATION_IDS);
  for (const route of routes) {
    if (seen.has(route.operationId))
      throw new Error(`operationId ${route.operationId} is used twice`);
    seen.add(route.operationId);
  }
  const schemas: Record<string, JsonObject> = { Error: ERROR_SCHEMA };
  const paths: Record<string, Record<string, JsonObject>> = serverPaths(options.metrics ?? true);
  for (const route of routes) {
    const path = route.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    (paths[path] ??= {})[route.method.toLowerCase()] = operation(route, schemas);
  }
  const tags = [...new Set(routes.flatMap((r) => r.tags)), 'server'].map((name) => ({ name }));
  return {
    openapi: '3.1.0',
    info: {
      title: 'Holdfast API',
      version: info.version,
      description:
        'The REST API of a Holdfast server. Conventions (authentication, errors, names, ' +
        'pagination, limits): docs/api-conventions.md.',
    },
    tags,
    security: [{ bearerAuth: [] }],
    paths,
    components: {
      securitySchemes: {
        bearerAuth: {
          type: 'http',
          scheme: 'bearer',
          description: 'An API token: `Authorization: Bearer <token>`.',
        },
      },
      schemas,
      responses: Object.fromEntries(
        Object.entries(ERROR_RESPONSES).map(([status, description]) => [
          errorResponseName(status),
          { description, content: jsonContent({ $ref: '#/components/schemas/Error' }) },
        ]),
      ),
    },
  };
}

function operation(route: Route, schemas: Record<string, JsonObject>): JsonObject {
  const convert = (schema: z.ZodType, part: string, io: 'input' | 'output'): JsonObject =>
    toJsonSchema(schema, io, `${route.operationId}.${part}`, schemas);
  const parameters = [
    ...parametersOf(route.params, 'path', (s, name) => convert(s, `path.${name}`, 'input')),
    ...parametersOf(route.query, 'query', (s, name) => convert(s, `query.${name}`, 'input')),
  ];
  const errors = ['400', ...(route.auth ? ['401'] : []), ...(route.params ? ['404'] : [])];
  if (route.body !== undefined) errors.push('413');
  errors.push('500', 'default');
  return {
    operationId: route.operationId,
    summary: route.summary,
    ...(route.description === undefined ? {} : { description: route.description }),
    tags: [...route.tags],
    ...(route.auth ? {} : { security: [] }),
    ...(parameters.length === 0 ? {} : { parameters }),
    ...(route.body === undefined
      ? {}
      : {
          requestBody: {
            required: !accepts(route.body, undefined),
            content: jsonContent(convert(route.body, 'body', 'input')),
          },
        }),
    responses: {
      [String(route.status)]:
        route.status === 204
          ? { description: 'Done; no content.' }
          : {
              description: 'Success.',
              content: jsonContent(
                route.response ? convert(route.response, 'response', 'input') : {},
              ),
            },
      ...Object.fromEntries(
        errors.map((s) => [s, { $ref: `#/components/responses/${errorResponseName(s)}` }]),
      ),
    },
  };
}

function parametersOf(
  schema: ObjectSchema | undefined,
  where: 'path' | 'query',
  convert: (field: z.ZodType, name: string) => JsonObject,
): JsonObject[] {
  return Object.entries(schema?.shape ?? {}).map(([name, field]) => {
    const json = convert(field as z.ZodType, name);
    return {
      name,
      in: where,
      required: where === 'path' || !accepts(field, undefined),
      ...(typeof json.description === 'string' ? { description: json.description } : {}),
      schema: json,
    };
  });
}

function accepts(schema: z.core.$ZodType, value: unknown): boolean {
  try {
    return z.safeParse(schema, value).success;
  } catch {
    return false; // an async refinement: treat the value as required
  }
}

/**
 * `schema` as JSON Schema. Definitions zod puts in `$defs` (shared schemas with an `id`,
 * recursive ones) move to `components.schemas`, since `#/$defs/…` would resolve against the
 * whole document; named ones keep their id, anonymous ones are named after `where`.
 */
function toJsonSchema(
  schema: z.ZodType,
  io: 'input' | 'output',
  where: string,
  schemas: Record<string, JsonObject>,
): JsonObject {
  let json: JsonObject;
  try {
    json = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as JsonObject;
  } catch (error) {
    return { description: `Not expressible in JSON Schema: ${describeError(error)}` };
  }
  const { $schema: _dialect, $defs, ...root } = json;
  const renames = new Map<string, string>();
  const selfRef = JSON.stringify(root).includes('"$ref":"#"');
  if (selfRef) renames.set('#', `#/components/schemas/${where}`);
  for (const name of Object.keys(($defs ?? {}) as JsonObject)) {
    const component = /^__schema\d+$/.test(name) ? `${where}.${name.slice(2)}` : name;
    renames.set(`#/$defs/${name}`, `#/components/schemas/${component}`);
  }
  const rewrite = (value: unknown): unknown => renameRefs(value, renames);
  for (const [name, definition] of Object.entries(($defs ?? {}) as JsonObject)) {
    const component = renames.get(`#/$defs/${name}`)!.slice('#/components/schemas/'.length);
    addComponent(schemas, component, rewrite(definition) as JsonObject);
  }
  if (!selfRef) return rewrite(root) as JsonObject;
  addComponent(schemas, where, rewrite(root) as JsonObject);
  return { $ref: `#/components/schemas/${where}` };
}

function addComponent(schemas: Record<string, JsonObject>, name: string, schema: JsonObject): void {
  const existing = schemas[name];
  if (existing !== undefined && JSON.stringify(existing) !== JSON.stringify(schema)) {
    // The same id seen as input in one place and as output in another can differ (defaults).
    throw new Error(`schema id ${name} stands for two different JSON Schemas; give them two ids`);
  }
  schemas[name] = schema;
}

function renameRefs(value: unknown, renames: ReadonlyMap<string, string>): unknown {
  if (Array.isArray(value)) return value.map((item) => renameRefs(item, renames));
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, item]) => [
      key,
      key === '$ref' && typeof item === 'string'
        ? (renames.get(item) ?? item)
        : renameRefs(item, renames),
    ]),
  );
}

function jsonContent(schema: JsonObject): JsonObject {
  return { 'application/json': { schema } };
}

function errorResponseName(status: string): string {
  return status === 'default' ? 'Error' : `Error${status}`;
}

/** The server's own endpoints, written out: they are not zod routes. */
function serverPaths(metrics: boolean): Record<string, Record<string, JsonObject>> {
  const open = { tags: ['server'], security: [] };
  const readiness = {
    type: 'object',
    required: ['status', 'checks'],
    properties: {
      status: { enum: ['ready', 'not ready'] },
      checks: { type: 'object', additionalProperties: { type: 'string' } },
    },
  };
  const paths: Record<string, Record<string, JsonObject>> = {
    '/healthz': {
      get: {
        operationId: 'getHealth',
        summary: 'Liveness: the process answers.',
        ...open,
        responses: {
          '200': {
            description: 'Alive.',
            content: jsonContent({
              type: 'object',
              required: ['status'],
              properties: { status: { const: 'ok' } },
            }),
          },
        },
      },
    },
    '/readyz': {
      get: {
        operationId: 'getReadiness',
        summary: 'Readiness: the server can take work (catalog open, workers running).',
        ...open,
        responses: {
          '200': { description: 'Ready.', content: jsonContent(readiness) },
          '503': { description: 'Not ready, or shutting down.', content: jsonContent(readiness) },
        },
      },
    },
    '/api/openapi.json': {
      get: {
        operationId: 'getOpenApiDocument',
        summary: 'This document.',
        tags: ['server'],
        responses: {
          '200': {
            description: 'The OpenAPI 3.1 document.',
            content: jsonContent({ type: 'object' }),
          },
          '401': { $ref: '#/components/responses/Error401' },
        },
      },
    },
  };
  if (metrics) {
    paths['/metrics'] = {
      get: {
        operationId: 'getMetrics',
        summary: 'Prometheus metrics, text exposition format.',
        ...open,
        responses: {
          '200': {
            description: 'The metrics.',
            content: { 'text/plain; version=0.0.4': { schema: { type: 'string' } } },
          },
        },
      },
    };
  }
  return paths;
}
