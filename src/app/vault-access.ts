import { join } from 'node:path';
import type { VaultRecord } from '../catalog/index.js';
import { HoldfastError, isHoldfastError } from '../core/index.js';
import { Vault } from '../engine/index.js';
import { loadIndexForReading, openBackend } from './open-vault.js';
import { readKeyFile } from './server-keys.js';

/**
 * Opens the vaults the server manages: each vault through the server's own key file, and its
 * local snapshot store (the instant-restore tier), a vault of the same format in the data dir.
 */
export class VaultAccess {
  constructor(private readonly dataDir: string) {}

  /** Where a machine item's disk mirrors (its consistent local copies) live. */
  mirrorDir(itemId: string): string {
    return join(this.dataDir, 'mirrors', itemId);
  }

  /** Where the base copy of an image (one image point of a vault) is kept for deployments. */
  imageDir(vaultId: string, pointId: string): string {
    return join(this.dataDir, 'images', vaultId, pointId);
  }

  /** Where the mirror of a disk with disk snapshots lives (keyed by a hash of its path). */
  diskMirrorDir(key: string): string {
    return join(this.dataDir, 'disk-mirrors', key);
  }

  /** Where the snapshot store of a vault lives. */
  snapshotLocation(vault: VaultRecord): string {
    return join(this.dataDir, 'snapshots', vault.id);
  }

  /**
   * Opens a vault; with `index`, loads it strictly (for work that writes). `from: 'secondary'`
   * opens a GRS vault's secondary copy (cross-region restore): the same vault, byte for byte.
   */
  async open(
    vault: VaultRecord,
    options: { index: 'strict' | 'reading' | 'none'; from?: 'primary' | 'secondary' },
  ): Promise<Vault> {
    const credential = await readKeyFile(vault.keyFile);
    const location = options.from === 'secondary' ? vault.secondaryLocation : vault.location;
    if (location === null)
      throw new HoldfastError('STATE_CONFLICT', `Vault '${vault.name}' has no secondary location.`);
    const opened = await Vault.open(openBackend(location), credential);
    if (opened.id !== vault.vaultUid)
      throw new HoldfastError(
        'VAULT_INTEGRITY',
        `The vault at ${location} is not the one registered as '${vault.name}' (its id changed).`,
      );
    await loadIndex(opened, options.index);
    return opened;
  }

  /** Opens (creating on first use) the snapshot store of a vault. */
  async openSnapshots(
    vault: VaultRecord,
    options: { index: 'strict' | 'reading' | 'none'; create: boolean },
  ): Promise<Vault | undefined> {
    const credential = await readKeyFile(vault.keyFile);
    const backend = openBackend(this.snapshotLocation(vault));
    let store: Vault;
    try {
      store = await Vault.open(backend, credential);
    } catch (error) {
      if (!isHoldfastError(error, 'VAULT_NOT_FOUND')) throw error;
      if (!options.create) return undefined;
      store = await this.createSnapshots(
        vault,
        await Vault.open(openBackend(vault.location), credential),
      );
    }
    await loadIndex(store, options.index);
    return store;
  }

  /**
   * Creates the snapshot store of a vault, sharing its keys: blob ids become comparable, so a
   * transfer reads only the data the vault lacks. Made with the vault, so that a backup's first
   * phase never needs the vault itself to be reachable. zstd level 1: this tier is local and
   * short-lived.
   */
  async createSnapshots(vault: VaultRecord, opened: Vault): Promise<Vault> {
    const credential = await readKeyFile(vault.keyFile);
    return Vault.init(openBackend(this.snapshotLocation(vault)), credential, {
      config: { ...opened.config, compressionLevel: 1 },
      shareKeysWith: opened,
    });
  }
}

async function loadIndex(vault: Vault, mode: 'strict' | 'reading' | 'none'): Promise<void> {
  if (mode === 'strict') await vault.loadIndex();
  else if (mode === 'reading') await loadIndexForReading(vault, () => undefined);
}
