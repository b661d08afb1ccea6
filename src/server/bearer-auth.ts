import type { FastifyRequest } from 'fastify';
import { HoldfastError } from '../core/index.js';
import type { Principal } from './route.js';

/**
 * Resolves a bearer token to its principal, or `undefined` when the token is unknown or
 * revoked. MUST NOT put the token into errors it throws: those are logged.
 */
export type Authenticate = (bearerToken: string) => Promise<Principal | undefined>;

// RFC 6750 token68 characters; the scheme name is case-insensitive.
const BEARER = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i;
const MAX_AUTHORIZATION_LENGTH = 2048;

/**
 * True when `request` needs a token: everything under `/api/` except routes defined with
 * `auth: false` (`publicRoutes` holds their `METHOD /pattern`). An unknown path under `/api/`
 * needs one too, so that an anonymous caller cannot probe which paths exist.
 */
export function needsAuth(request: FastifyRequest, publicRoutes: ReadonlySet<string>): boolean {
  // The matched route's pattern, not the raw URL, decides for known routes.
  const pattern = request.is404 ? pathOf(request.url) : request.routeOptions.url;
  if (pattern === undefined || !(pattern === '/api' || pattern.startsWith('/api/'))) return false;
  const method = request.method === 'HEAD' ? 'GET' : request.method;
  return request.is404 || !publicRoutes.has(`${method} ${pattern}`);
}

/** The principal of an `Authorization: Bearer <token>` header; AUTH_REQUIRED otherwise. */
export async function authenticateHeader(
  header: string | undefined,
  authenticate: Authenticate,
): Promise<Principal> {
  const match =
    header !== undefined && header.length <= MAX_AUTHORIZATION_LENGTH ? BEARER.exec(header) : null;
  if (match === null) {
    throw new HoldfastError(
      'AUTH_REQUIRED',
      'This endpoint needs an API token: send Authorization: Bearer <token>.',
    );
  }
  const principal = await authenticate(match[1]!);
  if (principal === undefined) {
    throw new HoldfastError('AUTH_REQUIRED', 'The API token is unknown or revoked.');
  }
  return principal;
}

/** The path of a request URL, without its query string. */
export function pathOf(url: string): string {
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}
