import { hostname } from 'node:os';
import {
  acquireLock,
  Archiver,
  createBlobSealer,
  type BackupProgress,
  type Consistency,
  type Point,
  type Vault,
} from '../engine/index.js';

/** What to back up, and how. */
export interface FileBackupRequest {
  readonly paths: readonly string[];
  readonly excludes: readonly string[];
  readonly oneFileSystem: boolean;
  readonly tags: readonly string[];
  /** The previous point of the same source: unchanged files are not read again. */
  readonly parent?: Point;
  readonly consistency?: Consistency;
  readonly host?: string;
  readonly signal?: AbortSignal;
  /** Per-entry failures; the backup goes on. */
  readonly onError: (path: string, error: unknown) => void;
  /** Called about once a second with live counters. */
  readonly onProgress?: (progress: Readonly<BackupProgress>) => void;
}

/**
 * Backs files up into a new point of `vault`, under a shared lock (so prune waits) and with
 * sealing threads sized to the machine; the point exists only once complete.
 */
export async function backupFiles(vault: Vault, request: FileBackupRequest): Promise<Point> {
  const lock = await acquireLock(vault, {
    exclusive: false,
    purpose: 'backup',
    waitMs: 10 * 60_000,
    ...(request.signal ? { signal: request.signal } : {}),
  });
  const sealer = createBlobSealer(vault.keys.encryption, { level: vault.config.compressionLevel });
  const archiver = new Archiver(vault, {
    paths: request.paths,
    excludes: request.excludes,
    tags: request.tags,
    host: request.host ?? hostname(),
    sealer,
    program: 'holdfast 0.1.0',
    onError: request.onError,
    ...(request.oneFileSystem ? { oneFileSystem: true } : {}),
    ...(request.parent ? { parent: request.parent } : {}),
    ...(request.consistency ? { consistency: request.consistency } : {}),
    ...(request.signal ? { signal: request.signal } : {}),
  });
  const onProgress = request.onProgress;
  const timer = onProgress ? setInterval(() => onProgress(archiver.progress), 1000) : undefined;
  try {
    return await archiver.run();
  } finally {
    if (timer) clearInterval(timer);
    await sealer.close();
    await lock.release();
  }
}
