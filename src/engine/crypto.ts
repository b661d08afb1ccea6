import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { HoldfastError } from '../core/index.js';
import { releaseBuffer } from './release-buffer.js';

/** Bytes of random nonce in front of every sealed object. */
export const NONCE_SIZE = 12;
/** Bytes of GCM authentication tag behind every sealed object. */
export const TAG_SIZE = 16;
/** Bytes a sealed object adds to its plaintext. */
export const SEAL_OVERHEAD = NONCE_SIZE + TAG_SIZE;

/** Where random bytes come from; injected so tests can be deterministic. */
export type RandomSource = (size: number) => Buffer;

/** The system's cryptographic random source. */
export const secureRandom: RandomSource = (size) => randomBytes(size);

/** The working keys of one vault, all derived from its 32-byte master key. */
export interface VaultKeys {
  /** AES-256-GCM key for every object in the vault. */
  readonly encryption: Buffer;
  /** HMAC-SHA-256 key for blob ids, so ids reveal nothing about plaintext. */
  readonly id: Buffer;
  /** Seed of the chunker's gear table, so chunk boundaries reveal nothing either. */
  readonly chunkerSeed: Buffer;
}

/** Derives the working keys from a vault's master key (HKDF-SHA-256, distinct labels). */
export function deriveVaultKeys(masterKey: Uint8Array, vaultId: string): VaultKeys {
  const derive = (label: string): Buffer =>
    Buffer.from(hkdfSync('sha256', masterKey, Buffer.from(vaultId, 'hex'), label, 32));
  return {
    encryption: derive('holdfast v1 encryption'),
    id: derive('holdfast v1 blob id'),
    chunkerSeed: derive('holdfast v1 chunker'),
  };
}

/**
 * Encrypts `plaintext` (or its parts, in order, as one plaintext) with AES-256-GCM:
 * `nonce(12) ‖ ciphertext ‖ tag(16)`.
 * `aad` binds the object to its role, so one sealed object cannot be swapped for another kind.
 */
export function seal(
  key: Buffer,
  plaintext: Uint8Array | readonly Uint8Array[],
  aad: Uint8Array,
  random: RandomSource = secureRandom,
): Buffer {
  const parts = sealParts(key, plaintext, aad, random);
  const sealed = Buffer.concat(parts);
  // The cipher's output buffers are dead once copied; freeing them now keeps sealing threads
  // from piling up a blob's worth of garbage per blob until the next collection.
  for (const part of parts) releaseBuffer(part);
  return sealed;
}

/**
 * {@link seal} as the pieces that, in order, make up the sealed object, uncopied: the nonce,
 * the cipher's output buffers (each a buffer of its own), the tag. For callers that copy the
 * object somewhere anyway, such as into a pack.
 */
export function sealParts(
  key: Buffer,
  plaintext: Uint8Array | readonly Uint8Array[],
  aad: Uint8Array,
  random: RandomSource = secureRandom,
): Buffer[] {
  const nonce = random(NONCE_SIZE);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(aad);
  const bodies = (plaintext instanceof Uint8Array ? [plaintext] : plaintext).map((part) =>
    cipher.update(part),
  );
  const final = cipher.final();
  return [nonce, ...bodies, final, cipher.getAuthTag()].filter((part) => part.byteLength > 0);
}

/**
 * Decrypts and authenticates a sealed object. Throws VAULT_INTEGRITY, naming `what`, when the
 * bytes were damaged, truncated or sealed for another role or key.
 */
export function unseal(key: Buffer, sealed: Uint8Array, aad: Uint8Array, what: string): Buffer {
  if (sealed.byteLength < SEAL_OVERHEAD) {
    throw new HoldfastError(
      'VAULT_INTEGRITY',
      `${what} is truncated (${sealed.byteLength} bytes).`,
    );
  }
  const nonce = sealed.subarray(0, NONCE_SIZE);
  const tag = sealed.subarray(sealed.byteLength - TAG_SIZE);
  const body = sealed.subarray(NONCE_SIZE, sealed.byteLength - TAG_SIZE);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, nonce);
    decipher.setAAD(aad);
    decipher.setAuthTag(tag);
    const plain = decipher.update(body);
    const rest = decipher.final();
    // GCM is a stream mode: final() yields nothing, and returning update()'s buffer as it is
    // spares a copy of every blob read (and one buffer of its own per blob, which the opener
    // threads hand over without copying).
    return rest.byteLength === 0 ? plain : Buffer.concat([plain, rest]);
  } catch (error) {
    throw new HoldfastError(
      'VAULT_INTEGRITY',
      `${what} failed authentication: its bytes were changed or damaged.`,
      { cause: error },
    );
  }
}

/** The keyed content hash of a blob's plaintext: HMAC-SHA-256 with the vault's id key. */
export function blobIdOf(idKey: Buffer, plaintext: Uint8Array): string {
  return createHmac('sha256', idKey).update(plaintext).digest('hex');
}
