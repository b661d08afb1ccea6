import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import type { Backend } from '../backends/index.js';
import {
  HoldfastError,
  isHoldfastError,
  systemClock,
  type Clock,
  forEachLimit,
} from '../core/index.js';
import { DEFAULT_CHUNKER_PARAMS, type ChunkerParams } from './chunker.js';
import { sealObject, unsealObject, type ObjectRole } from './codec.js';
import { deriveVaultKeys, secureRandom, type RandomSource, type VaultKeys } from './crypto.js';
import {
  createKeySlot,
  openKeySlot,
  parseKeySlot,
  type Credential,
  type KeySlot,
} from './key-slots.js';
import { decodeIndexFile, MasterIndex } from './vault-index.js';

/** The on-disk format version this code writes and reads. */
export const VAULT_FORMAT_VERSION = 1;
/** Name of the plaintext marker object that makes a location a vault. */
export const MARKER_NAME = 'holdfast.json';

/** Settings fixed when a vault is created, stored sealed in `config`. */
export interface VaultConfig {
  readonly chunker: ChunkerParams;
  readonly compressionLevel: number;
  /** Target size of a pack file in bytes. */
  readonly packSize: number;
}

/** Defaults for new vaults. */
export const DEFAULT_VAULT_CONFIG: VaultConfig = {
  chunker: DEFAULT_CHUNKER_PARAMS,
  compressionLevel: 3,
  packSize: 16 * 1024 * 1024,
};

/** Injectable dependencies (STYLE.md principle 5). */
export interface VaultOptions {
  readonly clock?: Clock;
  readonly random?: RandomSource;
  /** scrypt cost for new passphrase slots; tests lower it. */
  readonly scrypt?: { N: number; r: number; p: number };
}

/** Metadata directories, one per sealed object role. */
export const OBJECT_DIRS = { index: 'index', point: 'points', lock: 'locks' } as const;

/**
 * An opened vault: its keys, config and the objects it stores. Blob writing and reading live
 * in {@link BlobWriter} and {@link BlobReader}; this class knows names, keys and metadata.
 */
export class Vault {
  /** All blobs known from the index files, filled by {@link loadIndex}. */
  readonly index = new MasterIndex();
  /** Index files read by {@link loadIndex}. */
  readonly indexFiles = new Set<string>();
  /** Every index file listed by the last {@link loadIndex}, superseded ones included. */
  private listedIndexFiles: readonly string[] = [];

  private constructor(
    readonly backend: Backend,
    readonly id: string,
    readonly keys: VaultKeys,
    readonly config: VaultConfig,
    private readonly masterKey: Buffer,
    /**
     * The id the working keys are derived with: the vault's own, or that of the vault it
     * shares keys with (docs/vault-format.md §2), so blob ids of the two can be compared.
     */
    readonly keyScope: string,
    /** Name of the key slot that opened the vault. */
    readonly keySlotName: string,
    readonly clock: Clock,
    readonly random: RandomSource,
    private readonly options: VaultOptions,
  ) {}

  /** Creates a new vault at an empty location. Fails with VAULT_EXISTS when one is there. */
  static async init(
    backend: Backend,
    credential: Credential,
    options: VaultOptions & {
      config?: VaultConfig;
      signal?: AbortSignal;
      /**
       * Makes a vault that shares this one's master key and working keys (and so its blob ids
       * and chunk boundaries; the chunker sizes are taken from it too): blobs move between
       * the two without being read when the other already has them. Each keeps its own id,
       * key slots and config otherwise.
       */
      shareKeysWith?: Vault;
    } = {},
  ): Promise<Vault> {
    const signal = options.signal ? { signal: options.signal } : {};
    if (await exists(backend, MARKER_NAME)) {
      throw new HoldfastError('VAULT_EXISTS', `A vault already exists at ${backend.location}.`);
    }
    const random = options.random ?? secureRandom;
    const clock = options.clock ?? systemClock;
    const id = random(32).toString('hex');
    const sibling = options.shareKeysWith;
    const masterKey = sibling ? Buffer.from(sibling.masterKey) : random(32);
    const keyScope = sibling ? sibling.keyScope : id;
    const chosen = options.config ?? DEFAULT_VAULT_CONFIG;
    const config = sibling ? { ...chosen, chunker: sibling.config.chunker } : chosen;
    const keys = deriveVaultKeys(masterKey, keyScope);
    // Order matters (docs/vault-format.md): key slot and config first, the marker last, so a
    // location with a marker always has everything needed to open it.
    const slot = await createKeySlot(
      id,
      masterKey,
      credential,
      slotMeta(clock, 'initial'),
      random,
      options.scrypt,
    );
    const slotName = await putKeySlot(backend, slot, signal);
    await backend.put('config', sealObject(keys.encryption, 'config', config, random), signal);
    const marker = {
      format: 'holdfast-vault',
      version: VAULT_FORMAT_VERSION,
      id,
      ...(keyScope !== id ? { keyScope } : {}),
      created: iso(clock),
    };
    await backend.put(MARKER_NAME, Buffer.from(JSON.stringify(marker, null, 2) + '\n'), {
      ...signal,
      ifNotExists: true,
    });
    return new Vault(
      backend,
      id,
      keys,
      config,
      masterKey,
      keyScope,
      slotName,
      clock,
      random,
      options,
    );
  }

  /** Opens an existing vault with a passphrase or key file. */
  static async open(
    backend: Backend,
    credential: Credential,
    options: VaultOptions = {},
  ): Promise<Vault> {
    const marker = await readMarker(backend);
    const slots = await listKeySlots(backend);
    for (const { name, slot } of slots) {
      if (slot.kind !== credential.kind) continue;
      let masterKey: Buffer;
      try {
        masterKey = await openKeySlot(marker.id, slot, credential);
      } catch (error) {
        if (isHoldfastError(error, 'VAULT_WRONG_KEY')) continue;
        throw error;
      }
      const keys = deriveVaultKeys(masterKey, marker.keyScope);
      const config = decodeConfig(
        unsealObject(keys.encryption, 'config', await backend.get('config'), 'vault config'),
      );
      return new Vault(
        backend,
        marker.id,
        keys,
        config,
        masterKey,
        marker.keyScope,
        name,
        options.clock ?? systemClock,
        options.random ?? secureRandom,
        options,
      );
    }
    throw new HoldfastError(
      'VAULT_WRONG_KEY',
      `The ${credential.kind === 'passphrase' ? 'passphrase' : 'key file'} does not open the vault at ${backend.location}. ` +
        'Check HOLDFAST_PASSWORD / HOLDFAST_PASSWORD_FILE or --key-file.',
    );
  }

  /** Every key slot with its name. */
  async keySlots(): Promise<Array<{ name: string; slot: KeySlot }>> {
    return listKeySlots(this.backend);
  }

  /** Adds a key slot for another passphrase or key file; returns its name. */
  async addKey(credential: Credential, label: string): Promise<string> {
    const slot = await createKeySlot(
      this.id,
      this.masterKey,
      credential,
      slotMeta(this.clock, label),
      this.random,
      this.options.scrypt,
    );
    return putKeySlot(this.backend, slot, {});
  }

  /** Removes a key slot; never the last one, nor the one this session opened with. */
  async removeKey(name: string): Promise<void> {
    const slots = await this.keySlots();
    const match = slots.filter((s) => s.name.startsWith(name));
    if (match.length !== 1) {
      throw new HoldfastError(
        'USAGE_INVALID',
        match.length === 0 ? `No key slot ${name}.` : `Key slot prefix ${name} is ambiguous.`,
      );
    }
    const target = match[0]!.name;
    if (slots.length === 1) {
      throw new HoldfastError(
        'VAULT_LAST_KEY',
        "This is the vault's only key; add another before removing it.",
      );
    }
    if (target === this.keySlotName) {
      throw new HoldfastError(
        'USAGE_INVALID',
        'This key opened the vault now; open it with another key to remove this one.',
      );
    }
    await this.backend.delete(`keys/${target}`);
  }

  /** Seals and stores a metadata object under its content hash; returns that id. */
  async saveObject(
    role: 'index' | 'point' | 'lock',
    value: unknown,
    signal?: AbortSignal,
  ): Promise<string> {
    const bytes = sealObject(this.keys.encryption, role, value, this.random);
    const id = createHash('sha256').update(bytes).digest('hex');
    await this.backend.put(`${OBJECT_DIRS[role]}/${id}`, bytes, signal ? { signal } : {});
    return id;
  }

  /** Loads and authenticates a metadata object, checking its content hash too. */
  async loadObject(
    role: 'index' | 'point' | 'lock',
    id: string,
    signal?: AbortSignal,
  ): Promise<unknown> {
    const bytes = await this.backend.get(`${OBJECT_DIRS[role]}/${id}`, signal ? { signal } : {});
    const what = `${role} ${id.slice(0, 12)}`;
    if (role !== 'lock' && createHash('sha256').update(bytes).digest('hex') !== id) {
      throw new HoldfastError(
        'VAULT_INTEGRITY',
        `The ${what} does not match its name: it was damaged or replaced.`,
      );
    }
    return unsealObject(this.keys.encryption, role as ObjectRole, bytes, what);
  }

  /** Ids of every object of a role, by listing the backend. */
  async listObjects(role: 'index' | 'point' | 'lock', signal?: AbortSignal): Promise<string[]> {
    const prefix = `${OBJECT_DIRS[role]}/`;
    const ids: string[] = [];
    for await (const info of this.backend.list(prefix, signal ? { signal } : {})) {
      ids.push(info.name.slice(prefix.length));
    }
    return ids;
  }

  /** Every pack in the vault with its size in bytes, by listing the backend. */
  async listPacks(signal?: AbortSignal): Promise<Map<string, number>> {
    const sizes = new Map<string, number>();
    for await (const info of this.backend.list('packs/', signal ? { signal } : {}))
      sizes.set(info.name.slice(info.name.lastIndexOf('/') + 1), info.size);
    return sizes;
  }

  /**
   * Reads every index file into {@link index}. A damaged index file throws VAULT_INTEGRITY
   * unless `onDamage` is given, in which case it is reported and skipped.
   */
  async loadIndex(
    options: { signal?: AbortSignal; onDamage?: (name: string, error: unknown) => void } = {},
  ): Promise<void> {
    const names = await this.listObjects('index', options.signal);
    this.listedIndexFiles = names;
    const files = new Map<string, ReturnType<typeof decodeIndexFile>>();
    await forEachLimit(names, 8, async (name) => {
      try {
        files.set(
          name,
          decodeIndexFile(await this.loadObject('index', name, options.signal), name),
        );
      } catch (error) {
        if (!options.onDamage || !isHoldfastError(error, 'VAULT_INTEGRITY')) throw error;
        options.onDamage(name, error);
      }
    });
    const superseded = new Set<string>();
    for (const file of files.values()) for (const s of file.supersedes) superseded.add(s);
    for (const [name, file] of files) {
      if (superseded.has(name)) continue;
      this.indexFiles.add(name);
      for (const pack of file.packs) this.index.addPack(pack.id, pack.blobs);
    }
  }

  /**
   * Reads the index again when its files changed since {@link loadIndex} (a prune or another
   * backup finished in between). A backup calls this once its lock is held: an index read before
   * could still list blobs a prune has since removed, and deduplicating against them would
   * make a point that refers to missing data.
   */
  async refreshIndex(options: { signal?: AbortSignal } = {}): Promise<boolean> {
    const names = await this.listObjects('index', options.signal);
    const known = new Set(this.listedIndexFiles);
    if (names.length === known.size && names.every((name) => known.has(name))) return false;
    this.index.clear();
    this.indexFiles.clear();
    await this.loadIndex(options);
    return true;
  }
}

function iso(clock: Clock): string {
  return new Date(clock.now()).toISOString();
}

function slotMeta(clock: Clock, label: string): { host: string; label: string; created: string } {
  return { host: hostname(), label, created: iso(clock) };
}

async function putKeySlot(
  backend: Backend,
  slot: KeySlot,
  options: { signal?: AbortSignal },
): Promise<string> {
  const bytes = Buffer.from(JSON.stringify(slot, null, 2) + '\n');
  const name = createHash('sha256').update(bytes).digest('hex');
  await backend.put(`keys/${name}`, bytes, options);
  return name;
}

async function listKeySlots(backend: Backend): Promise<Array<{ name: string; slot: KeySlot }>> {
  const out: Array<{ name: string; slot: KeySlot }> = [];
  for await (const info of backend.list('keys/')) {
    const name = info.name.slice('keys/'.length);
    out.push({ name, slot: parseKeySlot(await backend.get(info.name), name) });
  }
  return out;
}

async function exists(backend: Backend, name: string): Promise<boolean> {
  try {
    await backend.stat(name);
    return true;
  } catch (error) {
    if (isHoldfastError(error, 'BACKEND_NOT_FOUND')) return false;
    throw error;
  }
}

async function readMarker(
  backend: Backend,
): Promise<{ id: string; version: number; keyScope: string }> {
  let bytes: Buffer;
  try {
    bytes = await backend.get(MARKER_NAME);
  } catch (error) {
    if (isHoldfastError(error, 'BACKEND_NOT_FOUND')) {
      throw new HoldfastError(
        'VAULT_NOT_FOUND',
        `There is no vault at ${backend.location}. Check --vault / HOLDFAST_VAULT, or create one with 'holdfast init'.`,
        { cause: error },
      );
    }
    throw error;
  }
  let marker: { format?: unknown; version?: unknown; id?: unknown; keyScope?: unknown };
  try {
    marker = JSON.parse(bytes.toString('utf8')) as typeof marker;
  } catch (error) {
    throw new HoldfastError(
      'VAULT_INTEGRITY',
      `${MARKER_NAME} at ${backend.location} is not valid JSON.`,
      { cause: error },
    );
  }
  if (
    marker.format !== 'holdfast-vault' ||
    typeof marker.id !== 'string' ||
    !/^[0-9a-f]{64}$/.test(marker.id) ||
    (marker.keyScope !== undefined &&
      (typeof marker.keyScope !== 'string' || !/^[0-9a-f]{64}$/.test(marker.keyScope)))
  ) {
    throw new HoldfastError(
      'VAULT_INTEGRITY',
      `${MARKER_NAME} at ${backend.location} is not a Holdfast vault marker.`,
    );
  }
  if (marker.version !== VAULT_FORMAT_VERSION) {
    throw new HoldfastError(
      'VAULT_VERSION_UNSUPPORTED',
      `The vault at ${backend.location} has format version ${String(marker.version)}; this Holdfast reads version ${VAULT_FORMAT_VERSION}. Use a Holdfast release that supports it.`,
    );
  }
  return {
    id: marker.id,
    version: marker.version,
    keyScope: typeof marker.keyScope === 'string' ? marker.keyScope : marker.id,
  };
}

function decodeConfig(value: unknown): VaultConfig {
  const c = value as Partial<VaultConfig> | null;
  const chunker = c?.chunker;
  if (
    !c ||
    !chunker ||
    !Number.isSafeInteger(chunker.minSize) ||
    !Number.isSafeInteger(chunker.avgSize) ||
    !Number.isSafeInteger(chunker.maxSize) ||
    !Number.isSafeInteger(c.compressionLevel) ||
    !Number.isSafeInteger(c.packSize)
  ) {
    throw new HoldfastError('VAULT_INTEGRITY', 'The vault config is malformed.');
  }
  return { chunker, compressionLevel: c.compressionLevel!, packSize: c.packSize! };
}
