import type { Kysely } from 'kysely';
import type { Clock } from '../core/index.js';
import { num } from './json-column.js';
import type { TokenRecord, TokenRef, TokenScope, VaultRef } from './records.js';
import { newResourceId } from './resource-id.js';
import type { CatalogDatabase, TokenRow } from './schema.js';

/** API tokens. Only SHA-256 hashes of the secrets are stored. */
export class TokenStore {
  constructor(
    private readonly db: Kysely<CatalogDatabase>,
    private readonly clock: Clock,
  ) {}

  /** Records a token by the hash of its secret; an admin token unless `access` says otherwise. */
  async create(
    name: string,
    hash: string,
    access: { scope: TokenScope; vaultId: VaultRef | null } = { scope: 'admin', vaultId: null },
  ): Promise<TokenRecord> {
    const row: TokenRow = {
      id: newResourceId<TokenRef>('tok'),
      name,
      hash,
      created_at: this.clock.now(),
      last_used_at: null,
      revoked_at: null,
      scope: access.scope,
      vault_id: access.vaultId,
    };
    await this.db.insertInto('tokens').values(row).execute();
    return toToken(row);
  }

  /** The live (not revoked) token with this hash, if any; records its use. */
  async useByHash(hash: string): Promise<TokenRecord | undefined> {
    const row = await this.db
      .selectFrom('tokens')
      .selectAll()
      .where('hash', '=', hash)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    if (row === undefined) return undefined;
    await this.db
      .updateTable('tokens')
      .set({ last_used_at: this.clock.now() })
      .where('id', '=', row.id)
      .execute();
    return toToken(row);
  }

  /** All tokens, oldest first. */
  async list(): Promise<TokenRecord[]> {
    const rows = await this.db.selectFrom('tokens').selectAll().orderBy('created_at').execute();
    return rows.map(toToken);
  }

  /** Revokes a token; false when there is no live token with that id. */
  async revoke(id: string): Promise<boolean> {
    const result = await this.db
      .updateTable('tokens')
      .set({ revoked_at: this.clock.now() })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }
}

function toToken(row: TokenRow): TokenRecord {
  return {
    id: row.id as TokenRef,
    name: row.name,
    scope: row.scope as TokenScope,
    vaultId: row.vault_id as VaultRef | null,
    createdAt: num(row.created_at),
    lastUsedAt: num(row.last_used_at),
    revokedAt: num(row.revoked_at),
  };
}
