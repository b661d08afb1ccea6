import type { TokenRecord } from '../catalog/index.js';
import type { Principal } from './route.js';

/** The principal of a live token: an agent token carries the one vault it may add to. */
export function tokenPrincipal(token: TokenRecord): Principal {
  return token.scope === 'agent' && token.vaultId !== null
    ? { tokenId: token.id, name: token.name, agentVaultId: token.vaultId }
    : { tokenId: token.id, name: token.name };
}
