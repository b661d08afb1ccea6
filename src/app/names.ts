import type { Catalog, ItemRecord, PolicyRecord, VaultRecord } from '../catalog/index.js';
import { HoldfastError } from '../core/index.js';
import type { NameLookup } from './views.js';

/** Looks up a vault by name or says which names exist. */
export async function vaultNamed(catalog: Catalog, name: string): Promise<VaultRecord> {
  const vault = await catalog.vaults.byName(name);
  if (vault) return vault;
  throw new HoldfastError(
    'RESOURCE_NOT_FOUND',
    `No vault named '${name}'. List them with 'holdfast vault list'.`,
  );
}

/** Looks up a policy by name. */
export async function policyNamed(catalog: Catalog, name: string): Promise<PolicyRecord> {
  const policy = await catalog.policies.byName(name);
  if (policy) return policy;
  throw new HoldfastError(
    'RESOURCE_NOT_FOUND',
    `No policy named '${name}'. List them with 'holdfast policy list'.`,
  );
}

/** Looks up a protected item by name. */
export async function itemNamed(catalog: Catalog, name: string): Promise<ItemRecord> {
  const item = await catalog.items.byName(name);
  if (item) return item;
  throw new HoldfastError(
    'RESOURCE_NOT_FOUND',
    `No protected item named '${name}'. List them with 'holdfast item list'.`,
  );
}

/** A name lookup over the whole catalog, for views (catalogs hold hundreds, not millions). */
export async function nameLookup(catalog: Catalog): Promise<NameLookup> {
  const [vaults, policies, items] = await Promise.all([
    catalog.vaults.list(),
    catalog.policies.list(),
    catalog.items.list(),
  ]);
  const by = (records: ReadonlyArray<{ id: string; name: string }>) =>
    new Map(records.map((r) => [r.id, r.name]));
  const v = by(vaults);
  const p = by(policies);
  const i = by(items);
  return {
    vault: (id) => (id === null ? null : (v.get(id) ?? null)),
    policy: (id) => (id === null ? null : (p.get(id) ?? null)),
    item: (id) => (id === null ? null : (i.get(id) ?? null)),
  };
}
