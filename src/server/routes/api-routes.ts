import type { ControlPlane } from '../../app/index.js';
import type { Route } from '../route.js';
import { adminRoutes } from './admin-routes.js';
import { audited } from './audited.js';
import { itemRoutes } from './item-routes.js';
import { jobRoutes } from './job-routes.js';
import { policyRoutes } from './policy-routes.js';
import { vaultRoutes } from './vault-routes.js';

/** Every route of the REST API (docs/api.md); changes are recorded in the audit trail. */
export function apiRoutes(plane: ControlPlane): Route[] {
  return audited(plane, [
    ...vaultRoutes(plane),
    ...policyRoutes(plane),
    ...itemRoutes(plane),
    ...jobRoutes(plane),
    ...adminRoutes(plane),
  ]);
}
