import { describeError, Semaphore } from '../core/index.js';
import type { Point, Vault } from '../engine/index.js';
import {
  captureMachine,
  ImageArchiver,
  mirrorBase,
  mirrorPath,
  setMirrorBase,
  openDisk,
  type CapturedMachine,
  type ImageProgress,
  type MachineSource,
  type ScriptRunner,
} from '../workloads/index.js';
import { underBackupLock, type BackupLockRequest } from './file-backup.js';

export interface MachineBackupRequest extends BackupLockRequest {
  readonly name: string;
  readonly source: MachineSource;
  readonly mirrorDir: string;
  readonly tags: readonly string[];
  readonly runScript: ScriptRunner;
  readonly now: () => number;
  readonly notice: (message: string) => void;
  readonly onProgress?: (progress: Readonly<ImageProgress>) => void;
}

/** The machine description stored as `machine.json` in every machine point (docs/disks.md). */
export interface MachineDescription {
  readonly v: 1;
  readonly name: string;
  readonly capturedAt: string;
  readonly consistency: string;
  readonly frozenMs: number;
  readonly disks: ReadonlyArray<{
    readonly name: string;
    readonly source: string;
    /** The source's format; the point holds the guest's view, restored as raw or qcow2. */
    readonly format: 'raw' | 'qcow2';
    readonly size: number;
    readonly bytesRead: number;
    readonly changedBytes: number | null;
  }>;
  readonly excludedDisks: ReadonlyArray<{ readonly name: string; readonly source: string }>;
  readonly configs: readonly string[];
  readonly scripts: Readonly<
    Record<string, { ok: boolean; exitCode: number | null; timedOut: boolean; durationMs: number }>
  >;
}

/**
 * Backs a machine up: captures its disks at one instant into their mirrors (phase one's fast
 * part), then stores the mirrors' changed blocks and the configuration as a new point.
 */
export async function backupMachine(
  vault: Vault,
  request: MachineBackupRequest,
): Promise<{ point: Point; captured: CapturedMachine; bytesRead: number }> {
  // One capture and backup per set of mirrors at a time: a machine's scheduled backup and the
  // safety snapshot of a replace, or two snapshots of one disk, would otherwise refresh the
  // same mirror together.
  let lock = mirrorLocks.get(request.mirrorDir);
  if (lock === undefined) mirrorLocks.set(request.mirrorDir, (lock = new Semaphore(1)));
  return lock.run(() => captureAndBackUp(vault, request));
}

/** Serializes the work on each mirror directory of this process. */
const mirrorLocks = new Map<string, Semaphore>();

async function captureAndBackUp(
  vault: Vault,
  request: MachineBackupRequest,
): Promise<{ point: Point; captured: CapturedMachine; bytesRead: number }> {
  // Which point each mirror's present state was backed up into, read before the capture
  // refreshes the mirror (and forgets it until this backup completes): the changed blocks the
  // capture finds are relative to that point and to no other.
  const source = request.source;
  const bases = new Map<string, string | undefined>();
  for (const disk of source.disks)
    bases.set(disk.name, await mirrorBase(mirrorPath(request.mirrorDir, disk)));
  const captured = await captureMachine({
    source: request.source,
    mirrorDir: request.mirrorDir,
    runScript: request.runScript,
    now: request.now,
    notice: request.notice,
    ...(request.signal ? { signal: request.signal } : {}),
  });
  let bytesRead = 0;
  // The mirrors settle while they are backed up; nothing of theirs may run on after this returns.
  const point = await backUpCaptured(
    vault,
    request,
    captured,
    bases,
    (n) => (bytesRead = n),
  ).finally(() => captured.durable);
  return { point, captured, bytesRead };
}

/** Phase two: stores the captured mirrors' changed blocks and the configuration as a point. */
async function backUpCaptured(
  vault: Vault,
  request: MachineBackupRequest,
  captured: CapturedMachine,
  bases: ReadonlyMap<string, string | undefined>,
  onBytesRead: (bytes: number) => void,
): Promise<Point> {
  return underBackupLock(vault, request, async (parent, sealer) => {
    // Mirrors hold the guest's view, raw, whatever the source's format.
    const disks = await Promise.all(
      captured.disks.map(async (d) => {
        const disk = await openDisk(d.mirror);
        // The capture knows the mirror's zero blocks from its map: no need to ask the file
        // system, which would first wait for the mirror's flush.
        const known = d.dataBlocks;
        return known ? { ...disk, dataExtents: () => Promise.resolve(known) } : disk;
      }),
    );
    try {
      const description = describeMachine(request.name, captured, disks);
      const archiver = new ImageArchiver(vault, {
        disks: captured.disks.map((d, i) => ({
          name: d.name,
          disk: disks[i]!,
          ...(d.changed && parent !== undefined && bases.get(d.name) === parent.id
            ? { changed: d.changed }
            : {}),
        })),
        files: [
          { path: 'machine.json', data: Buffer.from(JSON.stringify(description, null, 2)) },
          ...captured.configs.map((c) => ({ path: `config/${c.name}`, data: c.data })),
        ],
        tags: request.tags,
        consistency: captured.consistency,
        time: captured.time,
        sealer,
        ...(parent ? { parent } : {}),
        ...(request.signal ? { signal: request.signal } : {}),
      });
      const onProgress = request.onProgress;
      onProgress?.(archiver.progress);
      const timer = onProgress ? setInterval(() => onProgress(archiver.progress), 1000) : undefined;
      try {
        const made = await archiver.run();
        onBytesRead(archiver.progress.bytesRead);
        // Only a mirror whose map is recorded may say which point it was backed up into.
        if (await captured.durable)
          for (const d of captured.disks) await setMirrorBase(d.mirror, made.id);
        return made;
      } finally {
        if (timer) clearInterval(timer);
      }
    } finally {
      await Promise.all(
        disks.map((d) => d.close().catch((e: unknown) => request.notice(describeError(e)))),
      );
    }
  });
}

function describeMachine(
  name: string,
  captured: CapturedMachine,
  disks: ReadonlyArray<{ readonly size: number }>,
): MachineDescription {
  const scripts: Record<string, MachineDescription['scripts'][string]> = {};
  for (const [phase, run] of Object.entries(captured.scripts))
    if (run)
      scripts[phase] = {
        ok: run.ok,
        exitCode: run.exitCode,
        timedOut: run.timedOut,
        durationMs: run.durationMs,
      };
  return {
    v: 1,
    name,
    capturedAt: new Date(captured.time).toISOString(),
    consistency: captured.consistency,
    frozenMs: captured.frozenMs,
    disks: captured.disks.map((d, i) => ({
      name: d.name,
      source: d.sourcePath,
      format: d.format,
      size: disks[i]!.size,
      bytesRead: d.bytesRead,
      changedBytes: d.changed ? d.changed.reduce((n, r) => n + r.length, 0) : null,
    })),
    excludedDisks: captured.excluded.map((d) => ({ name: d.name, source: d.path })),
    configs: captured.configs.map((c) => c.name),
    scripts,
  };
}
