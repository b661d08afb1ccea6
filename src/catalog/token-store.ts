import type { Kysely } from 'kysely';
import type { Clock } from '../core/index.js';
import { num } from './json-column.js';
import type { TokenRecord, TokenRef } from './records.js';
import { newResourceId } from './resource-id.js';
import type { CatalogDatabase, TokenRow } from './schema.js';

/** API tokens. Only SHA-256 hashes of the secrets are stored. */
export class TokenStore {
  constructor(
    private readonly db: Kysely<CatalogDatabase>,
    private readonly clock: Clock,
  ) {}

  /** Records a token by the hash of its secret. */
  async create(name: string, hash: string): Promise<TokenRecord> {
    const row: TokenRow = {
      id: newResourceId<TokenRef>('tok'),
      name,
      hash,
      created_at: this.clock.now(),
      last_used_at: null,
      revoked_at: null,
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
    createdAt: num(row.created_at),
    lastUsedAt: num(row.last_used_at),
    revokedAt: num(row.revoked_at),
  };
}
