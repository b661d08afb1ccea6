import { execFile } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { describeError, HoldfastError } from '../../core/index.js';
import type { Consistency } from '../../engine/index.js';
import type { ByteRange } from '../byte-ranges.js';
import { cloneOrCopyMirror, finishClone, type MirrorRefresh } from './disk-mirror.js';
import type { MachineDisk, MachineSource } from './machine-spec.js';
import { connectQemu, trackQemuChanges, type QemuTracking } from './qemu-changes.js';

/** The outcome of one hook script run, as the capture needs it. */
export interface ScriptOutcome {
  readonly ok: boolean;
  readonly exitCode: number | null;
  readonly timedOut: boolean;
  readonly attempts: number;
  readonly durationMs: number;
  readonly output: string;
}

/** Runs a hook script (checked for safe ownership first; throws when unsafe or missing). */
export type ScriptRunner = (
  path: string,
  args: string[],
  options: { timeoutMs: number; retries: number; signal?: AbortSignal },
) => Promise<ScriptOutcome>;

export interface CaptureRequest {
  readonly source: MachineSource;
  /** Where this machine's disk mirrors and their block maps live. */
  readonly mirrorDir: string;
  readonly runScript: ScriptRunner;
  readonly now: () => number;
  readonly signal?: AbortSignal;
  /** Messages for the job's record (consistency decisions, script failures). */
  readonly notice: (message: string) => void;
}

export interface CapturedDisk extends MirrorRefresh {
  readonly name: string;
  readonly sourcePath: string;
  /** The consistent copy to back up. */
  readonly mirror: string;
}

export interface CapturedMachine {
  readonly consistency: Consistency;
  /** The instant the disks were captured. */
  readonly time: number;
  /** How long the machine's file systems were frozen (0 when they were not). */
  readonly frozenMs: number;
  readonly disks: readonly CapturedDisk[];
  readonly excluded: readonly MachineDisk[];
  readonly configs: ReadonlyArray<{ readonly name: string; readonly data: Buffer }>;
  readonly scripts: { readonly pre?: ScriptOutcome; readonly post?: ScriptOutcome };
  /**
   * Resolves once every mirror is flushed and its block map recorded (true), or once that
   * failed (false, noticed: the next capture copies everything). Started after the thaw; the
   * backup reads the mirrors meanwhile. Never rejects.
   */
  readonly durable: Promise<boolean>;
}

const run = promisify(execFile);

/**
 * Captures every included disk of a machine at one instant (docs/disks.md "Consistency"):
 * the pre script quiesces applications, the file systems are frozen, all disks are cloned (or
 * their changed blocks copied) into their mirrors at once, the file systems thaw, and the post script runs
 * — always, once the pre script succeeded. The level reached is recorded: `application` when
 * the pre script succeeded, `file-system` when only the freeze did, `crash` otherwise.
 */
export async function captureMachine(request: CaptureRequest): Promise<CapturedMachine> {
  const { source, notice } = request;
  const scripts = source.scripts ?? {};
  const timeoutMs = (scripts.timeoutSeconds ?? 60) * 1000;
  const retries = scripts.retries ?? 0;
  const script = (path: string, phase: string) =>
    request.runScript(path, [phase], {
      timeoutMs,
      retries,
      ...(request.signal ? { signal: request.signal } : {}),
    });
  const included = source.disks.filter((d) => !source.excludeDisks.includes(d.name));
  await mkdir(request.mirrorDir, { recursive: true, mode: 0o700 });
  // Configuration is read first: a missing file fails the backup before anything is frozen.
  const configs = await Promise.all(
    source.configs.map(async (path) => ({ name: basename(path), data: await readFile(path) })),
  );

  let pre: ScriptOutcome | undefined;
  if (scripts.pre !== undefined) {
    // An unsafe or missing script counts as a failed one: the same rules decide what follows.
    pre = await script(scripts.pre, 'pre').catch((error: unknown) => failedRun(error));
    if (!pre.ok) {
      const why = scriptFailure('pre-snapshot', pre);
      if (scripts.continueOnFailure !== true)
        throw new HoldfastError(
          'SOURCE_UNREADABLE',
          `${why} No point was taken. Fix the script, or allow a lower consistency with --continue-on-script-failure.`,
        );
      notice(`${why} Continuing without application consistency, as configured.`);
    }
  }
  let post: ScriptOutcome | undefined;
  let frozenMs = 0;
  let frozen = false;
  let time = request.now();
  let refreshed: MirrorRefresh[];
  let captured = false;
  let tracking: QemuTracking | undefined;
  // A running QEMU tells which blocks its guest wrote since the last capture; connecting may
  // wait, so it happens before the freeze.
  const qemu =
    source.qemuMonitor !== undefined ? await connectQemu(source.qemuMonitor, notice) : undefined;
  try {
    frozen = await freeze(source, script, notice);
    time = request.now();
    // Measured on the monotonic clock: the window is a duration, not a catalog time.
    const frozenAt = performance.now();
    try {
      if (qemu !== undefined && source.qemuMonitor !== undefined)
        tracking = await trackQemuChanges(
          qemu,
          source.qemuMonitor,
          included.map((disk) => ({
            path: disk.path,
            mirror: mirrorPath(request.mirrorDir, disk),
          })),
          notice,
        );
      // All disks at once: the freeze lasts as long as the slowest copy, not their sum. Every
      // copy has ended before the thaw, also when one fails.
      const copies = await Promise.allSettled(
        included.map((disk) => {
          const { unchanged, open } = tracking?.disks.get(disk.path) ?? {};
          return cloneOrCopyMirror(disk.path, mirrorPath(request.mirrorDir, disk), {
            ...(unchanged ? { unchanged } : {}),
            ...(open ? { open } : {}),
          });
        }),
      );
      refreshed = copies.map((copy, i) => {
        if (copy.status === 'fulfilled') return copy.value;
        const disk = included[i]!;
        throw new HoldfastError(
          'SOURCE_UNREADABLE',
          `Disk ${disk.name} (${disk.path}) could not be captured: ${describeError(copy.reason)}`,
          { cause: copy.reason },
        );
      });
    } finally {
      if (frozen) {
        await thaw(source, script, notice);
        frozenMs = Math.max(1, Math.round(performance.now() - frozenAt));
      }
      // Cleanup in QEMU, outside the freeze window.
      await tracking?.release();
    }
    captured = true;
  } finally {
    await qemu?.close();
    if (!captured) await abandonTracking(tracking);
    if (pre?.ok === true && scripts.post !== undefined) {
      post = await script(scripts.post, 'post').catch((error: unknown) => failedRun(error));
      // After a failed capture there is no point to keep: the capture's own error says why.
      if (!post.ok)
        notice(`${scriptFailure('post-snapshot', post)}${captured ? ' The point is kept.' : ''}`);
    }
  }
  // Clones are read for their changed blocks outside the freeze window.
  const disks: CapturedDisk[] = [];
  for (const [i, disk] of included.entries()) {
    const mirror = mirrorPath(request.mirrorDir, disk);
    const refresh = refreshed[i]!;
    const result = refresh.cloned ? await finishClone(mirror, refresh) : refresh;
    disks.push({ ...result, name: disk.name, sourcePath: disk.path, mirror });
  }
  // A hypervisor's bitmap becomes the one to read next time only once its mirror is durable.
  const durable = Promise.all(
    disks.map((d) => d.settle().then(() => tracking?.disks.get(d.sourcePath)?.settle())),
  ).then(
    () => true,
    async (error: unknown) => {
      await abandonTracking(tracking);
      notice(
        `The disk mirrors could not be made durable (${describeError(error)}); the next backup copies the disks in full.`,
      );
      return false;
    },
  );
  const consistency: Consistency = pre?.ok ? 'application' : frozen ? 'file-system' : 'crash';
  return {
    consistency,
    time,
    frozenMs,
    disks,
    excluded: source.disks.filter((d) => source.excludeDisks.includes(d.name)),
    configs,
    scripts: { ...(pre ? { pre } : {}), ...(post ? { post } : {}) },
    durable,
  };
}

export function mirrorPath(dir: string, disk: MachineDisk): string {
  return join(dir, `${disk.name}.mirror`);
}

/** Freezes the machine's file systems; false (with a notice) when nothing froze them. */
async function freeze(
  source: MachineSource,
  script: (path: string, phase: string) => Promise<ScriptOutcome>,
  notice: (message: string) => void,
): Promise<boolean> {
  const frozenMounts: string[] = [];
  try {
    for (const mount of source.fsfreeze ?? []) {
      await run('fsfreeze', ['--freeze', mount]);
      frozenMounts.push(mount);
    }
    if (source.freezeCommand !== undefined) {
      const outcome = await script(source.freezeCommand, 'freeze');
      if (!outcome.ok) throw new Error(scriptFailure('freeze', outcome));
    }
    return frozenMounts.length > 0 || source.freezeCommand !== undefined;
  } catch (error) {
    for (const mount of frozenMounts)
      await run('fsfreeze', ['--unfreeze', mount]).catch(() => undefined);
    notice(
      `Freezing the file systems failed: ${describeError(error)} The point is crash-consistent.`,
    );
    return false;
  }
}

/** Drops the hypervisor bitmaps a failed capture started. */
async function abandonTracking(tracking: QemuTracking | undefined): Promise<void> {
  for (const disk of tracking?.disks.values() ?? []) await disk.abandon();
}

/** Thaws what {@link freeze} froze; failures are noticed, never thrown (the disks are copied). */
async function thaw(
  source: MachineSource,
  script: (path: string, phase: string) => Promise<ScriptOutcome>,
  notice: (message: string) => void,
): Promise<void> {
  if (source.freezeCommand !== undefined) {
    const outcome = await script(source.freezeCommand, 'thaw').catch((e: unknown) => failedRun(e));
    if (!outcome.ok)
      notice(`${scriptFailure('thaw', outcome)} Check the machine: it may still be frozen.`);
  }
  for (const mount of source.fsfreeze ?? []) {
    await run('fsfreeze', ['--unfreeze', mount]).catch((error: unknown) =>
      notice(`fsfreeze --unfreeze ${mount} failed: ${describeError(error)}`),
    );
  }
}

function failedRun(error: unknown): ScriptOutcome {
  return {
    ok: false,
    exitCode: null,
    timedOut: false,
    attempts: 1,
    durationMs: 0,
    output: describeError(error),
  };
}

/** A one-line account of a failed script run. */
export function scriptFailure(kind: string, outcome: ScriptOutcome): string {
  const how = outcome.timedOut
    ? 'timed out'
    : outcome.exitCode === null
      ? 'could not run'
      : `exited with ${outcome.exitCode}`;
  const tail = outcome.output.trim().split('\n').slice(-3).join(' | ');
  const tries = outcome.attempts > 1 ? ` after ${outcome.attempts} attempts` : '';
  return `The ${kind} script ${how}${tries}${tail ? `: ${tail}` : ''}.`;
}

export type { ByteRange };
