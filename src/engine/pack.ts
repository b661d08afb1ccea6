import { createHash } from 'node:crypto';
import { HoldfastError } from '../core/index.js';
import { blobTypeCode, blobTypeOf, type BlobType } from './blob-codec.js';
import { sealObject, unsealObject } from './codec.js';
import type { RandomSource } from './crypto.js';
import { releaseBuffer } from './release-buffer.js';

/** Where one blob sits inside a pack. */
export interface PackedBlob {
  readonly type: BlobType;
  readonly id: string;
  readonly offset: number;
  /** Sealed length in the pack. */
  readonly length: number;
  /** Plaintext length. */
  readonly rawLength: number;
}

/** Trailer magic: the last four bytes of every pack. */
export const PACK_MAGIC = Buffer.from('HFP1');
/** Bytes of trailer: u32le header length ‖ magic. */
export const PACK_TRAILER_SIZE = 8;

/** Storage name of a pack: `packs/<first two hex digits>/<id>`. */
export function packObjectName(packId: string): string {
  return `packs/${packId.slice(0, 2)}/${packId}`;
}

/**
 * Collects sealed blobs of one type into one pack file. Not thread-safe; one per writer.
 *
 * Blobs are copied into one buffer as they arrive, so that finishing the pack needs no second
 * copy of it (a concatenation would hold every pack twice while it uploads). The buffer can be
 * handed in, and taken back with {@link takeBuffer} once the pack is stored, so a writer reuses
 * the same few buffers for all its packs instead of leaving one per pack to the garbage collector.
 */
export class PackBuilder {
  private buffer: Buffer;
  private readonly entries: PackedBlob[] = [];
  private size = 0;

  /** `buffer` is space to collect blobs in, the builder's alone from now on; it grows as needed. */
  constructor(buffer: Buffer = Buffer.allocUnsafeSlow(INITIAL_CAPACITY)) {
    this.buffer = buffer;
  }

  /** Bytes of blob data collected so far. */
  get byteLength(): number {
    return this.size;
  }

  /** Number of blobs collected so far. */
  get count(): number {
    return this.entries.length;
  }

  /** Appends (copies) one sealed blob, given whole or as its pieces in order. */
  add(
    type: BlobType,
    id: string,
    sealed: Uint8Array | readonly Uint8Array[],
    rawLength: number,
  ): void {
    const pieces = sealed instanceof Uint8Array ? [sealed] : sealed;
    const length = pieces.reduce((n, p) => n + p.byteLength, 0);
    this.entries.push({ type, id, offset: this.size, length, rawLength });
    for (const piece of pieces) this.append(piece);
  }

  /**
   * Closes the pack: appends the sealed header and trailer, returns bytes, id and entries. The
   * bytes are a view of this builder's buffer: valid until {@link takeBuffer} hands it on.
   */
  finish(key: Buffer, random?: RandomSource): { id: string; bytes: Buffer; blobs: PackedBlob[] } {
    const { bytes, blobs } = this.close(key, random);
    return { id: createHash('sha256').update(bytes).digest('hex'), bytes, blobs };
  }

  /**
   * {@link finish} without naming the pack, for callers that hash it elsewhere: the pack's id
   * MUST be the SHA-256 of `bytes`. The builder MUST NOT be used after.
   */
  close(key: Buffer, random?: RandomSource): { bytes: Buffer; blobs: PackedBlob[] } {
    const header = sealObject(
      key,
      'pack-header',
      this.entries.map((e) => [
        blobTypeCode(e.type),
        Buffer.from(e.id, 'hex'),
        e.offset,
        e.length,
        e.rawLength,
      ]),
      random,
    );
    const trailer = Buffer.alloc(PACK_TRAILER_SIZE);
    trailer.writeUInt32LE(header.byteLength, 0);
    PACK_MAGIC.copy(trailer, 4);
    this.append(header);
    this.append(trailer);
    return { bytes: this.buffer.subarray(0, this.size), blobs: [...this.entries] };
  }

  /** Gives up this builder's buffer, for another builder; this one MUST NOT be used after. */
  takeBuffer(): Buffer {
    const buffer = this.buffer;
    this.buffer = Buffer.alloc(0);
    return buffer;
  }

  private append(bytes: Uint8Array): void {
    const needed = this.size + bytes.byteLength;
    if (needed > this.buffer.byteLength) {
      // Doubling keeps growth copies few for builders that start small; a pack that ends a
      // little over its target size grows by little more than it needs.
      const grown = Buffer.allocUnsafeSlow(
        Math.max(needed, Math.min(this.buffer.byteLength * 2, needed + GROWTH_SLACK)),
      );
      this.buffer.copy(grown, 0, 0, this.size);
      releaseBuffer(this.buffer);
      this.buffer = grown;
    }
    this.buffer.set(bytes, this.size);
    this.size = needed;
  }
}

const INITIAL_CAPACITY = 64 * 1024;
const GROWTH_SLACK = 1024 * 1024;

/** Reads the header length from a pack's trailer (the last {@link PACK_TRAILER_SIZE} bytes). */
export function parsePackTrailer(trailer: Buffer, packId: string, packSize: number): number {
  if (trailer.byteLength !== PACK_TRAILER_SIZE || !trailer.subarray(4).equals(PACK_MAGIC)) {
    throw new HoldfastError(
      'VAULT_INTEGRITY',
      `Pack ${packId} has no valid trailer (truncated or damaged).`,
    );
  }
  const headerLength = trailer.readUInt32LE(0);
  if (headerLength + PACK_TRAILER_SIZE > packSize) {
    throw new HoldfastError(
      'VAULT_INTEGRITY',
      `Pack ${packId} declares a header longer than the pack.`,
    );
  }
  return headerLength;
}

/** Decodes a pack's sealed header into its blob list, validating every field. */
export function parsePackHeader(
  key: Buffer,
  sealed: Buffer,
  packId: string,
  blobArea: number,
): PackedBlob[] {
  const what = `header of pack ${packId}`;
  const raw = unsealObject(key, 'pack-header', sealed, what);
  if (!Array.isArray(raw)) throw new HoldfastError('VAULT_INTEGRITY', `The ${what} is malformed.`);
  return raw.map((row: unknown) => {
    const blob = decodeBlobRow(row);
    if (blob === undefined || blob.offset + blob.length > blobArea) {
      throw new HoldfastError('VAULT_INTEGRITY', `The ${what} has a malformed entry.`);
    }
    return blob;
  });
}

/**
 * Decodes one `[type, id, offset, length, rawLength]` row of a pack header or index file, or
 * returns undefined when any field is malformed.
 */
export function decodeBlobRow(row: unknown): PackedBlob | undefined {
  const [code, id, offset, length, rawLength] = Array.isArray(row) ? row : [];
  const type = blobTypeOf(code);
  if (type === undefined || !(id instanceof Uint8Array) || id.byteLength !== 32) return undefined;
  if (![offset, length, rawLength].every((n) => Number.isSafeInteger(n) && (n as number) >= 0))
    return undefined;
  return {
    type,
    id: Buffer.from(id).toString('hex'),
    offset: offset as number,
    length: length as number,
    rawLength: rawLength as number,
  };
}
