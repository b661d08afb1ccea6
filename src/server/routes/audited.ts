import type { ControlPlane } from '../../app/index.js';
import { isHoldfastError } from '../../core/index.js';
import type { Principal, Route } from '../route.js';

/** Refusals by a protection (immutability, locked settings) that the audit trail keeps. */
const GUARDED: ReadonlySet<string> = new Set(['VAULT_IMMUTABLE', 'SETTING_LOCKED']);

/**
 * Wraps every route that changes something so that a successful call is written to the audit
 * trail (who, which operation, on what, with which fields — never secrets). A failed call
 * changed nothing and is not recorded, except one refused by a protection (immutability, a
 * locked setting): those attempts are recorded as refused. Reads are not recorded.
 */
export function audited(plane: ControlPlane, routes: readonly Route[]): Route[] {
  return routes.map((route) => {
    if (route.method === 'GET') return route;
    return {
      ...route,
      handler: async (request) => {
        const principal = request.principal as Principal | undefined;
        const actor = principal?.name ?? 'anonymous';
        const target = targetOf(route.url, request.params);
        let result: unknown;
        try {
          result = await route.handler(request);
        } catch (error) {
          // Attempts against protections are evidence: they are recorded although they failed.
          if (isHoldfastError(error) && GUARDED.has(error.code))
            await plane.audit.record(
              actor,
              `${route.operationId} refused (${error.code})`,
              target,
              request.body,
            );
          throw error;
        }
        await plane.audit.record(actor, route.operationId, target, request.body);
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
