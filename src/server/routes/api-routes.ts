import type { ControlPlane } from '../../app/index.js';
import type { Route } from '../route.js';
import { adminRoutes } from './admin-routes.js';
import { itemRoutes } from './item-routes.js';
import { jobRoutes } from './job-routes.js';
import { policyRoutes } from './policy-routes.js';
import { vaultRoutes } from './vault-routes.js';

/** Every route of the REST API (docs/api.md). */
export function apiRoutes(plane: ControlPlane): Route[] {
  return [
    ...vaultRoutes(plane),
    ...policyRoutes(plane),
    ...itemRoutes(plane),
    ...jobRoutes(plane),
    ...adminRoutes(plane),
  ];
}
