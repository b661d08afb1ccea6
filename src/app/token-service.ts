import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import type { Catalog, TokenRecord, TokenScope, VaultRef } from '../catalog/index.js';
import { HoldfastError } from '../core/index.js';
import type { TokenView } from './api-model.js';
import { adminTokenPath } from './data-dir.js';
import { tokenView } from './views.js';

/** The SHA-256 of a token secret: all the catalog keeps. */
export function hashToken(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** API tokens: `hf_` and 43 characters of base64url (256 random bits). */
export class TokenService {
  constructor(private readonly catalog: Catalog) {}

  /**
   * Creates a token; its secret is in this answer only. With `agentFor`, an agent token that
   * may only read and add objects of that vault (docs/agents.md).
   */
  async create(name: string, options: { agentFor?: string } = {}): Promise<TokenView> {
    let access: { scope: TokenScope; vaultId: VaultRef | null } = { scope: 'admin', vaultId: null };
    let vaultName: string | null = null;
    if (options.agentFor !== undefined) {
      const vault = await this.catalog.vaults.byName(options.agentFor);
      if (vault === undefined)
        throw new HoldfastError(
          'RESOURCE_NOT_FOUND',
          `There is no vault named '${options.agentFor}'.`,
        );
      access = { scope: 'agent', vaultId: vault.id };
      vaultName = vault.name;
    }
    const secret = `hf_${randomBytes(32).toString('base64url')}`;
    const record = await this.catalog.tokens.create(name, hashToken(secret), access);
    return tokenView(record, vaultName, secret);
  }

  async list(): Promise<TokenView[]> {
    const names = new Map((await this.catalog.vaults.list()).map((v) => [v.id, v.name]));
    return (await this.catalog.tokens.list()).map((t) =>
      tokenView(t, t.vaultId === null ? null : (names.get(t.vaultId) ?? t.vaultId)),
    );
  }

  async revoke(id: string): Promise<void> {
    if (!(await this.catalog.tokens.revoke(id)))
      throw new HoldfastError('RESOURCE_NOT_FOUND', `No live token with id ${id}.`);
  }

  /** The token a bearer secret belongs to, if it is live. */
  async authenticate(secret: string): Promise<TokenRecord | undefined> {
    if (!secret.startsWith('hf_') || secret.length > 200) return undefined;
    return this.catalog.tokens.useByHash(hashToken(secret));
  }

  /**
   * On first start (no token at all), creates the admin token and writes it to
   * `<data-dir>/admin.token` with mode 0600; returns that path, or undefined if tokens exist.
   */
  async ensureAdminToken(dataDir: string): Promise<string | undefined> {
    if ((await this.catalog.tokens.list()).length > 0) return undefined;
    const created = await this.create('admin');
    const path = adminTokenPath(dataDir);
    await writeFile(path, `${created.token}\n`, { mode: 0o600 });
    return path;
  }
}
