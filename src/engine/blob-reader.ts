import { HoldfastError } from '../core/index.js';
import { unsealBlob, type BlobType } from './blob-codec.js';
import { InlineBlobOpener, type BlobOpener, type SpanBlob, type SpanWrite } from './blob-opener.js';
import { packObjectName } from './pack.js';
import type { BlobLocation } from './vault-index.js';
import type { Vault } from './vault.js';

/** Reads blobs back: range reads from packs, each blob authenticated before use. */
export class BlobReader {
  private readonly treeCache = new Map<string, Buffer>();
  private readonly treePacks = new Map<string, Promise<Buffer>>();
  private treePackBytes = 0;

  constructor(private readonly vault: Vault) {}

  /** Location of a blob or a VAULT_INTEGRITY error saying the index lacks it. */
  locate(id: string): BlobLocation {
    const location = this.vault.index.get(id);
    if (!location) {
      throw new HoldfastError(
        'VAULT_INTEGRITY',
        `Blob ${id.slice(0, 12)} is not in any index: its data is missing from the vault.`,
      );
    }
    return location;
  }

  /** Loads, authenticates and decompresses one blob. */
  async load(id: string, type: BlobType, signal?: AbortSignal): Promise<Buffer> {
    if (type === 'tree') {
      const cached = this.treeCache.get(id);
      if (cached) return cached;
    }
    const location = this.locate(id);
    if (location.type !== type) {
      throw new HoldfastError(
        'VAULT_INTEGRITY',
        `Blob ${id.slice(0, 12)} is a ${location.type} blob, expected ${type}.`,
      );
    }
    const sealed =
      type === 'tree'
        ? (await this.treePack(location.pack, signal)).subarray(
            location.offset,
            location.offset + location.length,
          )
        : await this.vault.backend.getRange(
            packObjectName(location.pack),
            location.offset,
            location.length,
            signal ? { signal } : {},
          );
    if (sealed.byteLength !== location.length) {
      throw new HoldfastError(
        'VAULT_INTEGRITY',
        `Pack ${location.pack.slice(0, 12)} is truncated: blob ${id.slice(0, 12)} is cut short.`,
      );
    }
    const plain = unsealBlob(this.vault.keys.encryption, type, id, sealed);
    if (type === 'tree') this.remember(id, plain);
    return plain;
  }

  /**
   * Loads several blobs of one pack, a few MiB per ranged read (see {@link packReads}). `blobs`
   * MUST all be in `pack`. Yields each blob's plaintext or its error, so one damaged blob does
   * not hide others.
   */
  async *loadFromPack(
    pack: string,
    blobs: ReadonlyArray<{ id: string; location: BlobLocation }>,
    signal?: AbortSignal,
  ): AsyncGenerator<{ id: string; data?: Buffer; error?: unknown }> {
    const opener = new InlineBlobOpener(this.vault.keys.encryption);
    for (const run of packReads(blobs)) yield* await this.openPackBlobs(pack, run, opener, signal);
  }

  /**
   * Reads the span of one pack that holds `blobs` with one ranged read and opens every blob
   * through `opener`. Returns each blob's plaintext or its error, so one damaged blob does not
   * hide the others. The whole span is held in memory: callers split large sets with
   * {@link packReads}.
   */
  async openPackBlobs(
    pack: string,
    blobs: ReadonlyArray<{ id: string; location: BlobLocation }>,
    opener: BlobOpener,
    signal?: AbortSignal,
  ): Promise<Array<{ id: string; data?: Buffer; error?: unknown }>> {
    if (blobs.length === 0) return [];
    const read = await this.readSpan(pack, blobs, signal);
    if ('cause' in read) return read.sorted.map((b) => ({ id: b.id, error: read.cause }));
    const opened = await opener.openSpan(read.span, read.spanBlobs);
    return read.sorted.map((b, i) => {
      const result = opened[i];
      return result && 'data' in result
        ? { id: b.id, data: result.data }
        : { id: b.id, error: result?.error };
    });
  }

  /**
   * As {@link openPackBlobs}, but each blob's plaintext is written by the opener to the places
   * `writesOf` names for it (see {@link BlobOpener.writeSpan}); `writesOf` is called only once
   * the span has been read. Returns per blob the error that kept it from being read or opened,
   * or the failure of each of its writes (undefined: written).
   */
  async writePackBlobs<T extends { id: string; location: BlobLocation }>(
    pack: string,
    blobs: readonly T[],
    writesOf: (blob: T) => readonly SpanWrite[],
    opener: BlobOpener,
    signal?: AbortSignal,
  ): Promise<
    Array<{ blob: T; error?: unknown; failures?: ReadonlyArray<NodeJS.ErrnoException | undefined> }>
  > {
    if (blobs.length === 0) return [];
    const read = await this.readSpan(pack, blobs, signal);
    if ('cause' in read) return read.sorted.map((blob) => ({ blob, error: read.cause }));
    const written = await opener.writeSpan(
      read.span,
      read.spanBlobs.map((b, i) => ({ ...b, writes: writesOf(read.sorted[i] as T) })),
    );
    return read.sorted.map((blob, i) => {
      const result = written[i];
      return result && 'failures' in result
        ? { blob, failures: result.failures }
        : { blob, error: result?.error };
    });
  }

  /** The span of `pack` that holds `blobs` (sorted by offset), or why it could not be read. */
  private async readSpan<T extends { id: string; location: BlobLocation }>(
    pack: string,
    blobs: readonly T[],
    signal?: AbortSignal,
  ): Promise<
    { sorted: T[]; span: Buffer; spanBlobs: SpanBlob[] } | { sorted: T[]; cause: unknown }
  > {
    const sorted = [...blobs].sort((a, b) => a.location.offset - b.location.offset);
    const first = sorted[0];
    const last = sorted[sorted.length - 1];
    if (!first || !last) return { sorted, span: Buffer.alloc(0), spanBlobs: [] };
    const start = first.location.offset;
    const end = last.location.offset + last.location.length;
    let span: Buffer;
    try {
      span = await this.vault.backend.getRange(
        packObjectName(pack),
        start,
        end - start,
        signal ? { signal } : {},
      );
    } catch (cause) {
      return { sorted, cause };
    }
    const spanBlobs = sorted.map((b) => ({
      id: b.id,
      type: b.location.type,
      offset: b.location.offset - start,
      length: b.location.length,
      rawLength: b.location.rawLength,
    }));
    return { sorted, span, spanBlobs };
  }

  /**
   * Whole tree packs, cached: walking a point reads thousands of small trees that sit together
   * in a few packs, and one read per pack beats one per tree. Bounded to 64 MiB.
   */
  private treePack(pack: string, signal?: AbortSignal): Promise<Buffer> {
    let cached = this.treePacks.get(pack);
    if (!cached) {
      cached = this.vault.backend.get(packObjectName(pack), signal ? { signal } : {});
      this.treePacks.set(pack, cached);
      cached.then(
        (bytes) => {
          this.treePackBytes += bytes.byteLength;
          while (this.treePackBytes > 64 * 1024 * 1024 && this.treePacks.size > 1) {
            const [oldest, entry] = this.treePacks.entries().next().value as [
              string,
              Promise<Buffer>,
            ];
            this.treePacks.delete(oldest);
            void entry.then((b) => (this.treePackBytes -= b.byteLength));
          }
        },
        () => this.treePacks.delete(pack),
      );
    }
    return cached;
  }

  private remember(id: string, plain: Buffer): void {
    // Trees are small and re-read while walking; a bounded cache keeps memory flat.
    if (this.treeCache.size >= 1024) {
      const oldest = this.treeCache.keys().next().value;
      if (oldest !== undefined) this.treeCache.delete(oldest);
    }
    this.treeCache.set(id, plain);
  }
}

/** Most pack bytes one ranged read spans, and most plaintext bytes it yields at once. */
export const PACK_READ_BYTES = 4 * 1024 * 1024;

/**
 * Splits blobs of one pack into runs in pack order, each read with one ranged read: a run spans
 * at most {@link PACK_READ_BYTES} of the pack and holds at most as much plaintext (a larger
 * blob is a run of its own). Reading a whole pack at once would make memory grow with the pack
 * size, and with how well its data compressed.
 */
export function packReads<T extends { readonly location: BlobLocation }>(
  blobs: readonly T[],
): T[][] {
  const sorted = [...blobs].sort((a, b) => a.location.offset - b.location.offset);
  const runs: T[][] = [];
  let run: T[] = [];
  let start = 0;
  let plain = 0;
  for (const blob of sorted) {
    const end = blob.location.offset + blob.location.length;
    if (
      run.length > 0 &&
      (end - start > PACK_READ_BYTES || plain + blob.location.rawLength > PACK_READ_BYTES)
    ) {
      runs.push(run);
      run = [];
    }
    if (run.length === 0) {
      start = blob.location.offset;
      plain = 0;
    }
    run.push(blob);
    plain += blob.location.rawLength;
  }
  if (run.length > 0) runs.push(run);
  return runs;
}
