import type { ControlPlane } from '../../app/index.js';
import type { Principal, Route } from '../route.js';

/**
 * Wraps every route that changes something so that a successful call is written to the audit
 * trail (who, which operation, on what, with which fields — never secrets). A failed call
 * changed nothing and is not recorded; reads are not recorded.
 */
export function audited(plane: ControlPlane, routes: readonly Route[]): Route[] {
  return routes.map((route) => {
    if (route.method === 'GET') return route;
    return {
      ...route,
      handler: async (request) => {
        const result = await route.handler(request);
        const principal = request.principal as Principal | undefined;
        await plane.audit.record(
          principal?.name ?? 'anonymous',
          route.operationId,
          targetOf(route.url, request.params),
          request.body,
        );
        return result;
      },
    };
  });
}

/** `/api/items/:name/stop` with `{ name: 'docs' }` → `items/docs/stop`. */
function targetOf(url: string, params: unknown): string {
  const values = (params ?? {}) as Record<string, unknown>;
  return url
    .replace(/^\/api\//, '')
    .replace(/:([A-Za-z0-9_]+)/g, (_, name: string) => String(values[name] ?? name));
}
