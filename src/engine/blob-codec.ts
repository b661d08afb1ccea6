import { sealParts, unseal, type RandomSource, secureRandom } from './crypto.js';
import {
  framePayloadParts,
  unframePayload,
  withUnframedPayload,
  type CompressionSettings,
} from './codec.js';
import { releaseBuffer } from './release-buffer.js';

/** Kinds of blob stored in packs. */
export const BLOB_TYPES = ['data', 'tree'] as const;
/** One of {@link BLOB_TYPES}. */
export type BlobType = (typeof BLOB_TYPES)[number];

/** Numeric code of a blob type in pack headers and index files. */
export function blobTypeCode(type: BlobType): number {
  return type === 'data' ? 0 : 1;
}

/** Inverse of {@link blobTypeCode}; undefined for an unknown code. */
export function blobTypeOf(code: unknown): BlobType | undefined {
  return code === 0 ? 'data' : code === 1 ? 'tree' : undefined;
}

// A blob's associated data binds its ciphertext to its id and type: a blob moved to another
// place in a pack, or relabelled in an index, fails authentication.
function blobAad(type: BlobType, id: string): Buffer {
  return Buffer.concat([Buffer.from(`holdfast v1 blob ${type} `), Buffer.from(id, 'hex')]);
}

/**
 * Compresses (when worthwhile) and encrypts one blob for a pack, as the pieces that make up the
 * sealed blob in order, uncopied (see `sealParts`): a pack builder appends them one after the
 * other. The type byte and payload are encrypted as they are, without framing them into one
 * copy first.
 */
export function sealBlobParts(
  key: Buffer,
  type: BlobType,
  id: string,
  plaintext: Uint8Array,
  compression: CompressionSettings | null,
  random: RandomSource = secureRandom,
): Buffer[] {
  return sealParts(key, framePayloadParts(plaintext, compression), blobAad(type, id), random);
}

/** {@link sealBlobParts} joined into one buffer: the sealed blob as a pack holds it. */
export function sealBlob(...args: Parameters<typeof sealBlobParts>): Buffer {
  return Buffer.concat(sealBlobParts(...args));
}

/** Decrypts, authenticates and decompresses one blob read from a pack. */
export function unsealBlob(key: Buffer, type: BlobType, id: string, sealed: Uint8Array): Buffer {
  const what = `${type} blob ${id.slice(0, 12)}`;
  const framed = unseal(key, sealed, blobAad(type, id), what);
  const plain = unframePayload(framed, what);
  // Once decompressed, the decrypted bytes are dead: free them now, not at the next collection.
  if (plain.buffer !== framed.buffer) releaseBuffer(framed);
  return plain;
}

/**
 * Decrypts, authenticates and decompresses one blob that the index says holds `rawLength` bytes,
 * and calls `use` with its plaintext, which is valid only until `use` returns (see
 * {@link withUnframedPayload}): for plaintext that is written somewhere and dropped, without a
 * buffer of its own per blob.
 */
export function withUnsealedBlob<T>(
  key: Buffer,
  type: BlobType,
  id: string,
  sealed: Uint8Array,
  rawLength: number,
  use: (plaintext: Buffer) => T,
): T {
  const what = `${type} blob ${id.slice(0, 12)}`;
  const framed = unseal(key, sealed, blobAad(type, id), what);
  try {
    return withUnframedPayload(framed, rawLength, what, use);
  } finally {
    releaseBuffer(framed);
  }
}
