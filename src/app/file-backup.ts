import { hostname } from 'node:os';
import {
  acquireLock,
  Archiver,
  createBlobSealer,
  type BackupProgress,
  type BlobSealer,
  type Consistency,
  type LockInfo,
  type Point,
  type Vault,
} from '../engine/index.js';

/** What to back up, and how. */
export interface FileBackupRequest extends BackupLockRequest {
  readonly paths: readonly string[];
  readonly excludes: readonly string[];
  readonly oneFileSystem: boolean;
  readonly tags: readonly string[];
  readonly consistency?: Consistency;
  readonly host?: string;
  /** Per-entry failures; the backup goes on. */
  readonly onError: (path: string, error: unknown) => void;
  /** Called at the start and then about once a second with the live counters. */
  readonly onProgress?: (progress: Readonly<BackupProgress>) => void;
}

/** What every backup into a vault needs around its work: the lock, the index, the parent. */
export interface BackupLockRequest {
  /**
   * Finds the previous point of the same source (unchanged data is not read again). Called
   * once the lock is held, so a prune cannot remove that point's data in between.
   */
  readonly findParent?: () => Promise<Point | undefined>;
  /** How long to wait for a prune's exclusive lock (default ten minutes). */
  readonly lockWaitMs?: number;
  /** Told when the backup has to wait for another process's lock. */
  readonly onLockWait?: (holder: LockInfo) => void;
  readonly signal?: AbortSignal;
}

/**
 * Runs `work` under a shared lock on `vault` (so prune waits), with the index re-read once the
 * lock is held and the parent looked up then, and with sealing threads sized to the machine.
 */
export async function underBackupLock<T>(
  vault: Vault,
  request: BackupLockRequest,
  work: (parent: Point | undefined, sealer: BlobSealer) => Promise<T>,
): Promise<T> {
  const lock = await acquireLock(vault, {
    exclusive: false,
    purpose: 'backup',
    waitMs: request.lockWaitMs ?? 10 * 60_000,
    ...(request.signal ? { signal: request.signal } : {}),
    ...(request.onLockWait ? { onWait: request.onLockWait } : {}),
  });
  let parent: Point | undefined;
  try {
    // The index may have been read before the lock was held; a prune may have ended since.
    await vault.refreshIndex(request.signal ? { signal: request.signal } : {});
    parent = await request.findParent?.();
  } catch (error) {
    await lock.release();
    throw error;
  }
  const sealer = createBlobSealer(vault.keys.encryption, { level: vault.config.compressionLevel });
  try {
    return await work(parent, sealer);
  } finally {
    await sealer.close();
    await lock.release();
  }
}

/**
 * Backs files up into a new point of `vault`, under a shared lock (so prune waits) and with
 * sealing threads sized to the machine; the point exists only once complete.
 */
export async function backupFiles(vault: Vault, request: FileBackupRequest): Promise<Point> {
  return underBackupLock(vault, request, async (parent, sealer) => {
    const archiver = new Archiver(vault, {
      paths: request.paths,
      excludes: request.excludes,
      tags: request.tags,
      host: request.host ?? hostname(),
      sealer,
      program: 'holdfast 0.1.0',
      onError: request.onError,
      ...(request.oneFileSystem ? { oneFileSystem: true } : {}),
      ...(parent ? { parent } : {}),
      ...(request.consistency ? { consistency: request.consistency } : {}),
      ...(request.signal ? { signal: request.signal } : {}),
    });
    const onProgress = request.onProgress;
    onProgress?.(archiver.progress);
    const timer = onProgress ? setInterval(() => onProgress(archiver.progress), 1000) : undefined;
    try {
      return await archiver.run();
    } finally {
      if (timer) clearInterval(timer);
    }
  });
}
