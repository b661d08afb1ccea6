import type { Backend, ObjectInfo } from '../backends/index.js';
import type { Catalog, TokenScope, VaultRecord, VaultRef } from '../catalog/index.js';
import { HoldfastError, isHoldfastError } from '../core/index.js';
import type { AuditLog } from './audit.js';
import { openBackend } from './open-vault.js';

/** Who asks, as the API token says. */
export interface ObjectCaller {
  readonly name: string;
  readonly scope: TokenScope;
  /** The one vault an agent token is for. */
  readonly vaultId: string | null;
}

/** What a put did. */
export type PutOutcome = 'created' | 'unchanged' | 'replaced';

/** One page of a listing; `next` is where the following page starts. */
export interface ObjectPage {
  readonly objects: readonly ObjectInfo[];
  readonly next: string | undefined;
}

/** Locks coordinate processes; they are not data, and every writer must be able to free them. */
const LOCK_PREFIX = 'locks/';
const MAX_PAGE = 5000;
const POINT_PREFIX = 'points/';

/**
 * The vault's objects as the server hands them to other processes (docs/agents.md): an agent
 * with an `agent` token backs up through this without holding the storage credentials. It may
 * read everything and add objects, never delete or change one (locks aside); an immutable vault
 * refuses the same to everyone. Refusals are written to the audit trail. The server's own work
 * (retention, prune) does not come through here.
 */
export class VaultObjects {
  private readonly backends = new Map<string, Backend>();

  constructor(
    private readonly catalog: Catalog,
    private readonly audit: AuditLog,
    /**
     * Told of every point object added (`points/<id>`), once it is stored: the server records
     * an agent's points in the catalog. Its failure does not undo the put.
     */
    private readonly onPointAdded: (
      vault: VaultRecord,
      id: string,
    ) => Promise<void> = async () => {},
  ) {}

  async get(
    caller: ObjectCaller,
    vaultName: string,
    name: string,
    range: { offset: number; length: number } | undefined,
    signal: AbortSignal,
  ): Promise<Buffer> {
    const backend = await this.backendFor(caller, vaultName);
    return range === undefined
      ? backend.get(name, { signal })
      : backend.getRange(name, range.offset, range.length, { signal });
  }

  async stat(caller: ObjectCaller, vaultName: string, name: string, signal: AbortSignal) {
    return (await this.backendFor(caller, vaultName)).stat(name, { signal });
  }

  /** Objects under `prefix` in name order, from after `after`, at most `limit`. */
  async list(
    caller: ObjectCaller,
    vaultName: string,
    query: { prefix: string; after?: string | undefined; limit?: number | undefined },
    signal: AbortSignal,
  ): Promise<ObjectPage> {
    const backend = await this.backendFor(caller, vaultName);
    const limit = Math.min(query.limit ?? MAX_PAGE, MAX_PAGE);
    const all: ObjectInfo[] = [];
    for await (const info of backend.list(query.prefix, { signal })) {
      if (query.after === undefined || info.name > query.after) all.push(info);
    }
    // Backends list in their own order; pages need one that does not change between calls.
    all.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const objects = all.slice(0, limit);
    const next = all.length > limit ? objects[objects.length - 1]!.name : undefined;
    return { objects, next };
  }

  /**
   * Stores an object. Where changes are refused (agent token, immutable vault), an object
   * that exists is left alone: the same bytes again is a harmless retry ('unchanged'),
   * different bytes are refused and audited.
   */
  async put(
    caller: ObjectCaller,
    vaultName: string,
    name: string,
    data: Buffer,
    options: { ifNotExists: boolean },
    signal: AbortSignal,
  ): Promise<PutOutcome> {
    const vault = await this.vaultFor(caller, vaultName);
    const backend = this.backendOf(vault);
    const refusal = name.startsWith(LOCK_PREFIX) ? undefined : refusalFor(caller, vault);
    if (refusal === undefined && !options.ifNotExists) {
      const existed = await exists(backend, name, signal);
      await backend.put(name, data, { signal });
      if (existed) return 'replaced';
    } else {
      try {
        await backend.put(name, data, { signal, ifNotExists: true });
      } catch (error) {
        if (!isHoldfastError(error, 'BACKEND_EXISTS') || refusal === undefined) throw error;
        if ((await backend.get(name, { signal })).equals(data)) return 'unchanged';
        throw await this.refuse(caller, vault, 'put', name, refusal, { bytes: data.length });
      }
    }
    if (name.startsWith(POINT_PREFIX))
      await this.onPointAdded(vault, name.slice(POINT_PREFIX.length));
    return 'created';
  }

  /** Deletes an object; refused (and audited) for agents and in immutable vaults, locks aside. */
  async delete(
    caller: ObjectCaller,
    vaultName: string,
    name: string,
    signal: AbortSignal,
  ): Promise<void> {
    const vault = await this.vaultFor(caller, vaultName);
    const isLock = name.startsWith(LOCK_PREFIX);
    const refusal = isLock ? undefined : refusalFor(caller, vault);
    if (refusal !== undefined) throw await this.refuse(caller, vault, 'delete', name, refusal, {});
    await this.backendOf(vault).delete(name, { signal });
    if (!isLock) await this.audit.record(caller.name, 'deleteVaultObject', target(vault, name), {});
  }

  /** Closes the backends opened so far. */
  async close(): Promise<void> {
    const open = [...this.backends.values()];
    this.backends.clear();
    await Promise.all(open.map((backend) => backend.close()));
  }

  private async backendFor(caller: ObjectCaller, vaultName: string): Promise<Backend> {
    return this.backendOf(await this.vaultFor(caller, vaultName));
  }

  private async vaultFor(caller: ObjectCaller, vaultName: string): Promise<VaultRecord> {
    const vault = await this.catalog.vaults.byName(vaultName);
    // An agent learns nothing about vaults other than its own, not even whether they exist.
    if (caller.scope === 'agent' && (vault === undefined || vault.id !== caller.vaultId))
      throw new HoldfastError(
        'ACCESS_DENIED',
        `The token '${caller.name}' is an agent token for another vault; it may not use '${vaultName}'.`,
      );
    if (vault === undefined)
      throw new HoldfastError('RESOURCE_NOT_FOUND', `There is no vault named '${vaultName}'.`);
    return vault;
  }

  // One backend per vault and location (a failover changes the location).
  private backendOf(vault: VaultRecord): Backend {
    const key = `${vault.id} ${vault.location}`;
    let backend = this.backends.get(key);
    if (backend === undefined) {
      backend = openBackend(vault.location);
      this.backends.set(key, backend);
    }
    return backend;
  }

  private async refuse(
    caller: ObjectCaller,
    vault: VaultRecord,
    operation: 'put' | 'delete',
    name: string,
    code: 'VAULT_APPEND_ONLY' | 'VAULT_IMMUTABLE',
    details: Record<string, unknown>,
  ): Promise<HoldfastError> {
    const action = operation === 'put' ? 'putVaultObject' : 'deleteVaultObject';
    await this.audit.record(
      caller.name,
      `${action} refused (${code})`,
      target(vault, name),
      details,
    );
    const what = operation === 'put' ? 'overwrite' : 'delete';
    return new HoldfastError(
      code,
      code === 'VAULT_APPEND_ONLY'
        ? `Refused to ${what} ${name} in vault '${vault.name}': the token '${caller.name}' is append-only (it may add, never delete or change). Points leave the vault through the server's retention. The attempt is recorded in the audit trail.`
        : `Refused to ${what} ${name} in vault '${vault.name}': the vault is immutable (${vault.immutability}). The attempt is recorded in the audit trail.`,
    );
  }
}

/** Why changes to existing objects are refused for this caller in this vault, if they are. */
export function refusalFor(
  caller: ObjectCaller,
  vault: { readonly id: VaultRef; readonly immutability: string },
): 'VAULT_APPEND_ONLY' | 'VAULT_IMMUTABLE' | undefined {
  if (caller.scope === 'agent') return 'VAULT_APPEND_ONLY';
  if (vault.immutability !== 'disabled') return 'VAULT_IMMUTABLE';
  return undefined;
}

function target(vault: VaultRecord, name: string): string {
  return `vaults/${vault.name}/objects/${name}`;
}

async function exists(backend: Backend, name: string, signal: AbortSignal): Promise<boolean> {
  try {
    await backend.stat(name, { signal });
    return true;
  } catch (error) {
    if (isHoldfastError(error, 'BACKEND_NOT_FOUND')) return false;
    throw error;
  }
}
