import { HoldfastError } from '../core/index.js';
import { blobTypeCode, type BlobType } from './blob-codec.js';
import { decodeBlobRow, type PackedBlob } from './pack.js';

/** Where a blob can be read: its pack and its place in it. */
export interface BlobLocation {
  readonly pack: string;
  readonly type: BlobType;
  readonly offset: number;
  readonly length: number;
  readonly rawLength: number;
}

/** Contents of one index file: which blobs each listed pack holds. */
export interface IndexFile {
  /** Index files this one replaces (written by prune); readers ignore those. */
  readonly supersedes: readonly string[];
  readonly packs: ReadonlyArray<{ readonly id: string; readonly blobs: readonly PackedBlob[] }>;
}

/** Turns an index file into the plain value that is sealed and stored. */
export function encodeIndexFile(index: IndexFile): unknown {
  return {
    v: 1,
    supersedes: index.supersedes,
    packs: index.packs.map((p) => ({
      id: Buffer.from(p.id, 'hex'),
      blobs: p.blobs.map((b) => [
        blobTypeCode(b.type),
        Buffer.from(b.id, 'hex'),
        b.offset,
        b.length,
        b.rawLength,
      ]),
    })),
  };
}

/** Validates and decodes a stored index value. */
export function decodeIndexFile(value: unknown, name: string): IndexFile {
  const bad = (): HoldfastError =>
    new HoldfastError('VAULT_INTEGRITY', `Index file ${name} is malformed; run 'holdfast check'.`);
  const raw = value as { v?: unknown; supersedes?: unknown; packs?: unknown };
  if (raw === null || typeof raw !== 'object' || raw.v !== 1 || !Array.isArray(raw.packs))
    throw bad();
  const badRow = (): never => {
    throw bad();
  };
  const supersedes = Array.isArray(raw.supersedes) ? raw.supersedes.map(String) : [];
  const packs = raw.packs.map((p: { id?: unknown; blobs?: unknown }) => {
    if (!(p.id instanceof Uint8Array) || !Array.isArray(p.blobs)) throw bad();
    const blobs = p.blobs.map((row: unknown): PackedBlob => decodeBlobRow(row) ?? badRow());
    return { id: Buffer.from(p.id).toString('hex'), blobs };
  });
  return { supersedes, packs };
}

/**
 * The in-memory union of all index files: blob id → location. Memory grows with the number of
 * distinct blobs in the vault (about 150 bytes each).
 */
export class MasterIndex {
  private readonly blobs = new Map<string, BlobLocation>();
  private readonly packBlobs = new Map<string, number>();

  /** Adds every blob of one pack. A blob already known keeps its first location. */
  addPack(packId: string, blobs: readonly PackedBlob[]): void {
    this.packBlobs.set(packId, (this.packBlobs.get(packId) ?? 0) + blobs.length);
    for (const b of blobs) {
      if (!this.blobs.has(b.id)) {
        this.blobs.set(b.id, {
          pack: packId,
          type: b.type,
          offset: b.offset,
          length: b.length,
          rawLength: b.rawLength,
        });
      }
    }
  }

  /** Forgets everything (before reading the index files again). */
  clear(): void {
    this.blobs.clear();
    this.packBlobs.clear();
  }

  /** Location of a blob, or undefined. */
  get(id: string): BlobLocation | undefined {
    return this.blobs.get(id);
  }

  /** True when the vault holds this blob. */
  has(id: string): boolean {
    return this.blobs.has(id);
  }

  /** Every known pack id. */
  packs(): IterableIterator<string> {
    return this.packBlobs.keys();
  }

  /** Number of distinct blobs. */
  get size(): number {
    return this.blobs.size;
  }

  /** Every blob with its location. */
  entries(): IterableIterator<[string, BlobLocation]> {
    return this.blobs.entries();
  }
}
