import { forEachLimit } from '../core/index.js';
import { PACK_TRAILER_SIZE, packObjectName, parsePackHeader, parsePackTrailer } from './pack.js';
import type { Vault } from './vault.js';

/** What {@link indexPacksFromHeaders} found. */
export interface PackRecovery {
  /** Packs no index file lists whose headers were read into the in-memory index. */
  readonly recovered: number;
  /** Blobs those packs added. */
  readonly blobs: number;
}

/**
 * Adds to the in-memory index every pack that no loaded index file lists, by reading its own
 * header (the pack is self-describing, vault-format §5). Used after a damaged index file was
 * skipped, so that read-only commands still find the blobs it listed. Nothing is written:
 * rebuilding index files is `check`'s and `prune`'s business. Packs whose header cannot be
 * read are passed to `onDamage` and skipped.
 */
export async function indexPacksFromHeaders(
  vault: Vault,
  options: { signal?: AbortSignal; onDamage?: (pack: string, error: unknown) => void } = {},
): Promise<PackRecovery> {
  const op = options.signal ? { signal: options.signal } : {};
  const known = new Set(vault.index.packs());
  const missing = [...(await vault.listPacks(options.signal))]
    .filter(([id]) => !known.has(id))
    .map(([id, size]) => ({ id, size }));
  let recovered = 0;
  let blobs = 0;
  await forEachLimit(missing, 8, async ({ id, size }) => {
    try {
      const name = packObjectName(id);
      const trailer = await vault.backend.getRange(
        name,
        Math.max(size - PACK_TRAILER_SIZE, 0),
        PACK_TRAILER_SIZE,
        op,
      );
      const headerLength = parsePackTrailer(trailer, id, size);
      const headerAt = size - PACK_TRAILER_SIZE - headerLength;
      const sealed = await vault.backend.getRange(name, headerAt, headerLength, op);
      const entries = parsePackHeader(vault.keys.encryption, sealed, id, headerAt);
      vault.index.addPack(id, entries);
      recovered += 1;
      blobs += entries.length;
    } catch (error) {
      if (!options.onDamage || options.signal?.aborted) throw error;
      options.onDamage(id, error);
    }
  });
  return { recovered, blobs };
}
