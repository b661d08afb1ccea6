import type { Catalog, ImmutabilityState, ItemRecord, VaultRecord } from '../catalog/index.js';
import { HoldfastError } from '../core/index.js';
import { parsePolicySpec, type RetentionRules } from '../jobs/index.js';

const RULES = ['daily', 'weekly', 'monthly', 'yearly'] as const;

/**
 * Changes a vault's immutability: `locked` is for good (SETTING_LOCKED), `enabled` can be
 * turned off again.
 */
export async function setImmutability(
  catalog: Catalog,
  vault: VaultRecord,
  state: ImmutabilityState,
): Promise<void> {
  if (vault.immutability === 'locked' && state !== 'locked')
    throw new HoldfastError(
      'SETTING_LOCKED',
      `Vault '${vault.name}' is immutable and locked: that cannot be undone by anyone.`,
    );
  await catalog.vaults.setImmutability(vault.id, state);
}

/** True while nothing in the vault may be deleted before its expiry. */
export function isImmutable(vault: VaultRecord): boolean {
  return vault.immutability !== 'disabled';
}

/** Refuses an operation that would delete data of an immutable vault before its expiry. */
export function refuseDeletion(vault: VaultRecord, what: string): void {
  if (isImmutable(vault))
    throw new HoldfastError(
      'VAULT_IMMUTABLE',
      `Vault '${vault.name}' is immutable (${vault.immutability}): ${what} is refused. Points leave when their expiry passes.`,
    );
}

/**
 * Refuses a retention change that would shorten any rule for items in immutable vaults: a
 * rule removed or lowered. Lengthening is always allowed.
 */
export async function refuseShorterRetention(
  catalog: Catalog,
  items: readonly ItemRecord[],
  before: unknown,
  after: unknown,
): Promise<void> {
  const old = parsePolicySpec(before).retention;
  const next = parsePolicySpec(after).retention;
  const shortened = RULES.filter((rule) => shorter(old, next, rule));
  if (shortened.length === 0) return;
  for (const item of items) {
    const vault = await catalog.vaults.byId(item.vaultId);
    if (vault && isImmutable(vault))
      throw new HoldfastError(
        'VAULT_IMMUTABLE',
        `Item '${item.name}' is in immutable vault '${vault.name}': its retention can only be lengthened, ` +
          `not shortened (${shortened.join(', ')}).`,
      );
  }
}

function shorter(old: RetentionRules, next: RetentionRules, rule: (typeof RULES)[number]): boolean {
  const was = old[rule];
  if (was === undefined) return false;
  const now = next[rule];
  return now === undefined || now < was;
}
