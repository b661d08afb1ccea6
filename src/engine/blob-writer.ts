import { HoldfastError, Semaphore, throwIfAborted } from '../core/index.js';
import type { BlobType } from './blob-codec.js';
import { blobIdOf } from './crypto.js';
import type { BlobSealer, SealedBlob } from './blob-sealer.js';
import { PackBuilder, packObjectName, type PackedBlob } from './pack.js';
import { releaseBuffer } from './release-buffer.js';
import { encodeIndexFile } from './vault-index.js';
import type { Vault } from './vault.js';

/** A pack ends with the blob that reaches the pack size: room for a typical last blob. */
const PACK_SLACK = 1024 * 1024;
/** Buffers of stored packs kept for the next ones; more are needed only while uploads queue. */
const SPARE_PACK_BUFFERS = 2;

/** Outcome of saving one blob. */
export interface SavedBlob {
  readonly id: string;
  readonly rawLength: number;
  /** False when the vault (or this writer) already had the blob: nothing was stored. */
  readonly isNew: boolean;
}

/** Counters of what a writer stored. */
export interface BlobWriterStats {
  newBlobs: number;
  newRawBytes: number;
  storedBytes: number;
  packs: number;
}

/** Tuning of a {@link BlobWriter}. */
export interface BlobWriterOptions {
  readonly sealer: BlobSealer;
  /** Packs uploaded at once. */
  readonly uploadConcurrency?: number;
  /** Bytes handed to the sealer and not yet packed; bounds memory. */
  readonly maxInFlightBytes?: number;
  /** Write an index file after this many packs, so a crash loses little (default 4). */
  readonly packsPerIndex?: number;
  readonly signal?: AbortSignal;
}

/**
 * Deduplicates, seals, packs and uploads blobs, and writes index files for what it uploaded.
 * Ordering (docs/vault-format.md): a pack is uploaded before any index file names it; the
 * writer's callers write trees and the point only after {@link flush} has resolved.
 */
export class BlobWriter {
  readonly stats: BlobWriterStats = { newBlobs: 0, newRawBytes: 0, storedBytes: 0, packs: 0 };
  private readonly known = new Set<string>();
  private readonly builders = new Map<BlobType, PackBuilder>();
  private readonly tasks = new Set<Promise<void>>();
  private readonly uploads: Semaphore;
  private unindexed: Array<{ id: string; blobs: PackedBlob[] }> = [];
  private inFlightBytes = 0;
  private queuedPackBytes = 0;
  private readonly waiters: Array<() => void> = [];
  private failure: { error: unknown } | undefined;
  private readonly spareBuffers: Buffer[] = [];

  constructor(
    private readonly vault: Vault,
    private readonly options: BlobWriterOptions,
  ) {
    this.uploads = new Semaphore(options.uploadConcurrency ?? 2);
  }

  /** True when the vault or this writer already has a blob with this id. */
  has(id: string): boolean {
    return this.known.has(id) || this.vault.index.has(id);
  }

  /** Hashes and, when new, queues one blob. Resolves once queued, not once stored. */
  async save(type: BlobType, data: Uint8Array): Promise<SavedBlob> {
    return this.saveHashed(type, blobIdOf(this.vault.keys.id, data), data);
  }

  /**
   * {@link save} for a blob whose id the caller has computed elsewhere (on a hashing thread). The
   * id MUST be `blobIdOf(vault.keys.id, data)`: the vault would otherwise hold a blob under
   * a name that is not its content's, which `holdfast check --read-data` reports as damage.
   */
  async saveHashed(type: BlobType, id: string, data: Uint8Array): Promise<SavedBlob> {
    this.rethrow();
    if (this.has(id)) return { id, rawLength: data.byteLength, isNew: false };
    this.known.add(id);
    // The caller may reuse or free `data` once this resolves: nothing below may look at it
    // after the sealer has taken its copy.
    const length = data.byteLength;
    await this.reserve(length);
    this.track(
      this.options.sealer
        .seal(type, id, data)
        .then((sealed) => this.addToPack(type, id, sealed, length))
        .finally(() => this.releaseBytes(length)),
    );
    this.stats.newBlobs += 1;
    this.stats.newRawBytes += length;
    return { id, rawLength: length, isNew: true };
  }

  /** Uploads every pending pack and writes the index for them. After this, all saved blobs are durable. */
  async flush(): Promise<void> {
    while (this.tasks.size > 0) await Promise.allSettled([...this.tasks]);
    this.rethrow();
    for (const [type, builder] of this.builders) {
      if (builder.count > 0) this.track(this.upload(builder));
      this.builders.delete(type);
    }
    while (this.tasks.size > 0) await Promise.allSettled([...this.tasks]);
    this.rethrow();
    await this.writeIndex();
  }

  private track(task: Promise<void>): void {
    const guarded = task.catch((error: unknown) => {
      this.failure ??= { error };
    });
    const tracked = guarded.finally(() => this.tasks.delete(tracked));
    this.tasks.add(tracked);
  }

  private rethrow(): void {
    if (this.failure) throw this.failure.error;
    throwIfAborted(this.options.signal);
  }

  private async reserve(bytes: number): Promise<void> {
    const limit = this.options.maxInFlightBytes ?? 16 * 1024 * 1024;
    // Finished packs waiting for an upload slot count too: a slow backend must slow down reading,
    // not pile up packs in memory.
    const queuedLimit = (this.options.uploadConcurrency ?? 2) * this.vault.config.packSize;
    while (
      (this.inFlightBytes > 0 && this.inFlightBytes + bytes > limit) ||
      this.queuedPackBytes > queuedLimit
    ) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
      this.rethrow();
    }
    this.inFlightBytes += bytes;
  }

  private releaseBytes(bytes: number): void {
    this.inFlightBytes -= bytes;
    for (const wake of this.waiters.splice(0)) wake();
  }

  private releaseQueued(bytes: number): void {
    this.queuedPackBytes -= bytes;
    for (const wake of this.waiters.splice(0)) wake();
  }

  private addToPack(type: BlobType, id: string, sealed: SealedBlob, rawLength: number): void {
    let builder = this.builders.get(type);
    if (!builder) {
      // Data packs fill up one after another: each takes the buffer of a pack already stored.
      // Tree packs are few and mostly small, and grow from a small buffer.
      builder = new PackBuilder(type === 'data' ? this.packBuffer() : undefined);
      this.builders.set(type, builder);
    }
    builder.add(type, id, sealed, rawLength);
    // The sealed copy in the pack is the one that counts; these pieces came from a sealer
    // thread and are this writer's alone.
    for (const piece of sealed) releaseBuffer(piece);
    if (builder.byteLength >= this.vault.config.packSize) {
      this.builders.delete(type);
      this.track(this.upload(builder));
    }
  }

  private async upload(builder: PackBuilder): Promise<void> {
    const size = builder.byteLength;
    this.queuedPackBytes += size;
    await this.uploads
      .run(async () => {
        throwIfAborted(this.options.signal);
        const closed = builder.close(this.vault.keys.encryption, this.vault.random);
        // Hashed on a sealing thread; the pack's buffer moves there and back.
        const { digest: id, bytes } = await this.options.sealer.digest(closed.bytes);
        const signal = this.options.signal;
        await this.vault.backend.put(packObjectName(id), bytes, signal ? { signal } : {});
        this.stats.storedBytes += bytes.byteLength;
        this.stats.packs += 1;
        this.vault.index.addPack(id, closed.blobs);
        this.unindexed.push({ id, blobs: closed.blobs });
        const whole = Buffer.from(bytes.buffer, 0, bytes.buffer.byteLength);
        if (this.spareBuffers.length < SPARE_PACK_BUFFERS) this.spareBuffers.push(whole);
        else releaseBuffer(whole);
      })
      .finally(() => this.releaseQueued(size));
    if (this.unindexed.length >= (this.options.packsPerIndex ?? 4)) await this.writeIndex();
  }

  /** Room for one data pack: a stored pack's buffer, or a new one a little over the pack size. */
  private packBuffer(): Buffer {
    return (
      this.spareBuffers.pop() ?? Buffer.allocUnsafeSlow(this.vault.config.packSize + PACK_SLACK)
    );
  }

  private async writeIndex(): Promise<void> {
    if (this.unindexed.length === 0) return;
    const packs = this.unindexed;
    this.unindexed = [];
    try {
      const name = await this.vault.saveObject(
        'index',
        encodeIndexFile({ supersedes: [], packs }),
        this.options.signal,
      );
      this.vault.indexFiles.add(name);
    } catch (error) {
      this.unindexed.push(...packs);
      throw error instanceof HoldfastError
        ? error
        : new HoldfastError('BACKEND_IO', 'Writing an index file failed.', { cause: error });
    }
  }
}
