import { resolve } from 'node:path';
import { LocalBackend, type Backend } from '../backends/index.js';
import { HoldfastError } from '../core/index.js';
import { Vault, type Credential, type VaultConfig, type VaultOptions } from '../engine/index.js';

/**
 * Turns a vault location into a backend. Today: a local directory path (or `file://` URL).
 * Object storage (`s3://`, `azure://`) plugs in here.
 */
export function openBackend(location: string): Backend {
  if (location.trim() === '') {
    throw new HoldfastError(
      'USAGE_INVALID',
      'No vault given: pass --vault <dir> or set HOLDFAST_VAULT.',
    );
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(location)?.[1]?.toLowerCase();
  if (scheme === undefined) return new LocalBackend(resolve(location));
  if (scheme === 'file') return new LocalBackend(decodeURIComponent(new URL(location).pathname));
  throw new HoldfastError(
    'USAGE_INVALID',
    `Vault locations of type ${scheme}:// are not supported by this build; use a local directory.`,
  );
}

/** Opens an existing vault and loads its index. */
export async function openVault(
  location: string,
  credential: Credential,
  options: VaultOptions & { loadIndex?: boolean } = {},
): Promise<Vault> {
  // `check` loads the index itself, so that a damaged index file is reported, not fatal.
  const vault = await Vault.open(openBackend(location), credential, options);
  if (options.loadIndex !== false) await vault.loadIndex();
  return vault;
}

/** Creates a vault at a location. */
export async function createVault(
  location: string,
  credential: Credential,
  options: VaultOptions & { config?: VaultConfig } = {},
): Promise<Vault> {
  return Vault.init(openBackend(location), credential, options);
}
