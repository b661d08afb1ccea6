import { hkdfSync, scrypt as scryptCallback } from 'node:crypto';
import { promisify } from 'node:util';
import { HoldfastError } from '../core/index.js';
import { seal, secureRandom, unseal, type RandomSource } from './crypto.js';

const scrypt = promisify(scryptCallback) as (
  password: Buffer,
  salt: Buffer,
  keylen: number,
  options: { N: number; r: number; p: number; maxmem: number },
) => Promise<Buffer>;

/** How a key slot's key-encryption key is obtained. */
export const KEY_SLOT_KINDS = ['passphrase', 'keyfile'] as const;
/** One of {@link KEY_SLOT_KINDS}. */
export type KeySlotKind = (typeof KEY_SLOT_KINDS)[number];

/** What unlocks a vault: a passphrase or the contents of a key file. */
export type Credential =
  | { readonly kind: 'passphrase'; readonly passphrase: string }
  | { readonly kind: 'keyfile'; readonly secret: Buffer };

/** A key slot as stored (plaintext JSON) under `keys/<id>`. */
export interface KeySlot {
  readonly version: 1;
  readonly kind: KeySlotKind;
  readonly created: string;
  readonly host: string;
  readonly label: string;
  readonly kdf: KdfParams;
  /** base64 of the sealed master key. */
  readonly wrapped: string;
}

/** Key derivation parameters of a slot. */
export type KdfParams =
  | {
      readonly name: 'scrypt';
      readonly N: number;
      readonly r: number;
      readonly p: number;
      readonly salt: string;
    }
  | { readonly name: 'hkdf-sha256'; readonly salt: string };

/** scrypt cost: about 0.1 s and 32 MiB per unlock on a current core. */
export const DEFAULT_SCRYPT = { N: 1 << 15, r: 8, p: 1 } as const;

function slotAad(vaultId: string): Buffer {
  return Buffer.from(`holdfast v1 key slot ${vaultId}`);
}

async function keyEncryptionKey(credential: Credential, kdf: KdfParams): Promise<Buffer> {
  const salt = Buffer.from(kdf.salt, 'base64');
  if (kdf.name === 'scrypt') {
    if (credential.kind !== 'passphrase') throw wrongKey();
    const maxmem = 128 * kdf.N * kdf.r * kdf.p + 16 * 1024 * 1024;
    return scrypt(Buffer.from(credential.passphrase.normalize('NFC')), salt, 32, {
      ...kdf,
      maxmem,
    });
  }
  if (credential.kind !== 'keyfile') throw wrongKey();
  return Buffer.from(hkdfSync('sha256', credential.secret, salt, 'holdfast v1 key file', 32));
}

function wrongKey(): HoldfastError {
  return new HoldfastError(
    'VAULT_WRONG_KEY',
    'The passphrase or key file does not open this vault. Check HOLDFAST_PASSWORD / HOLDFAST_PASSWORD_FILE or --key-file.',
  );
}

/** Wraps `masterKey` into a new slot unlocked by `credential`. */
export async function createKeySlot(
  vaultId: string,
  masterKey: Buffer,
  credential: Credential,
  meta: { host: string; label: string; created: string },
  random: RandomSource = secureRandom,
  scryptParams: { N: number; r: number; p: number } = DEFAULT_SCRYPT,
): Promise<KeySlot> {
  const salt = random(32).toString('base64');
  const kdf: KdfParams =
    credential.kind === 'passphrase'
      ? { name: 'scrypt', ...scryptParams, salt }
      : { name: 'hkdf-sha256', salt };
  const kek = await keyEncryptionKey(credential, kdf);
  const wrapped = seal(kek, masterKey, slotAad(vaultId), random).toString('base64');
  return { version: 1, kind: credential.kind, ...meta, kdf, wrapped };
}

/** Unwraps the master key from `slot`, or throws VAULT_WRONG_KEY. */
export async function openKeySlot(
  vaultId: string,
  slot: KeySlot,
  credential: Credential,
): Promise<Buffer> {
  if (slot.kind !== credential.kind) throw wrongKey();
  const kek = await keyEncryptionKey(credential, slot.kdf);
  try {
    return unseal(kek, Buffer.from(slot.wrapped, 'base64'), slotAad(vaultId), 'key slot');
  } catch {
    throw wrongKey();
  }
}

/** Parses and validates a stored slot. */
export function parseKeySlot(bytes: Buffer, name: string): KeySlot {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw new HoldfastError('VAULT_INTEGRITY', `Key slot ${name} is not valid JSON.`, {
      cause: error,
    });
  }
  const slot = value as Partial<KeySlot>;
  if (
    slot.version !== 1 ||
    !KEY_SLOT_KINDS.includes(slot.kind as KeySlotKind) ||
    !slot.kdf ||
    !slot.wrapped
  ) {
    throw new HoldfastError(
      'VAULT_INTEGRITY',
      `Key slot ${name} is malformed or of an unknown version.`,
    );
  }
  return slot as KeySlot;
}
