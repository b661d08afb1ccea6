import { spawn } from 'node:child_process';
import { lstat, readdir, readFile, readlink, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute } from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { HoldfastError, describeError, throwIfAborted } from '../core/index.js';

/** How to run a hook script; every field has a default (docs/hook-scripts.md). */
export interface HookScriptOptions {
  readonly args?: readonly string[];
  /** Added to the script's small, fixed environment; the server's own is not passed on. */
  readonly env?: Readonly<Record<string, string>>;
  /** Per attempt; default 10 minutes. Then the process group gets SIGTERM. */
  readonly timeoutMs?: number;
  /** Further attempts after a failed or timed-out one; default 0. */
  readonly retries?: number;
  /** Pause between attempts; default 5 seconds. */
  readonly retryDelayMs?: number;
  /** From SIGTERM to SIGKILL of the process group; default 10 seconds. */
  readonly killGraceMs?: number;
  /** Aborting kills the script's process group; the call then throws CANCELLED. */
  readonly signal?: AbortSignal;
}

/** How a hook script ran: its last attempt, and the whole call's duration. */
export interface HookResult {
  /** Exited 0 within its time. */
  readonly ok: boolean;
  /** Null when a signal ended it. */
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly timedOut: boolean;
  readonly attempts: number;
  /** From the call to its return, all attempts and pauses included. */
  readonly durationMs: number;
  /** The last 4 KiB of the last attempt's stdout and stderr, interleaved as they came. */
  readonly output: string;
}

const OUTPUT_LIMIT = 4096;
/**
 * How long output may still arrive after the script exits. Not until the pipes close: a
 * background process the script left running may hold them open for hours.
 */
const OUTPUT_DRAIN_MS = 250;
const POLL_MS = 50;
/** What every script gets; not the server's environment, which may hold secrets. */
const BASE_ENV = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  LANG: 'C.UTF-8',
};

/**
 * Checks the rule for hook scripts: an absolute path to a regular file (not a symbolic link),
 * owned by root, executable by its owner, writable by neither group nor others, in a directory
 * owned by root and writable by neither group nor others. Holdfast runs these scripts with its
 * own privileges, usually root; anyone who could change or replace one would run code as root.
 * Throws USAGE_INVALID saying what is wrong and the command that fixes it.
 */
export async function checkScriptSafety(path: string): Promise<void> {
  if (!isAbsolute(path)) throw unsafe(path, 'is not an absolute path', 'give its full path');
  const file = await lstat(path).catch((error: NodeJS.ErrnoException) => {
    const missing = error.code === 'ENOENT' || error.code === 'ENOTDIR';
    throw new HoldfastError(
      'USAGE_INVALID',
      missing
        ? `The hook script ${path} does not exist: create it (owned by root, mode 0755) or correct the path.`
        : `The hook script ${path} cannot be examined: ${describeError(error)}.`,
      { cause: error },
    );
  });
  const fix = `chown root:root ${path} && chmod 0755 ${path}`;
  if (file.isSymbolicLink()) {
    const target = await readlink(path).catch(() => '?');
    throw unsafe(
      path,
      `is a symbolic link (to ${target})`,
      'configure the path of the script itself',
    );
  }
  if (!file.isFile()) throw unsafe(path, 'is not a regular file', 'configure the path of a script');
  if (file.uid !== 0) throw unsafe(path, `is owned by uid ${file.uid}, not root`, fix);
  if (file.mode & 0o022) throw unsafe(path, `is writable by ${writers(file.mode)}`, fix);
  if (!(file.mode & 0o100)) throw unsafe(path, 'is not executable by its owner', fix);
  const dir = dirname(path);
  const parent = await stat(dir);
  const dirFix = `chown root:root ${dir} && chmod go-w ${dir}, or move the script to a directory only root can write`;
  if (parent.uid !== 0)
    throw unsafe(path, `is in ${dir}, owned by uid ${parent.uid}, who could replace it`, dirFix);
  if (parent.mode & 0o022)
    throw unsafe(
      path,
      `is in ${dir}, writable by ${writers(parent.mode)}, who could replace it`,
      dirFix,
    );
}

function writers(mode: number): string {
  if ((mode & 0o022) === 0o022) return 'group and others';
  return mode & 0o020 ? 'its group' : 'others';
}

function unsafe(path: string, problem: string, fix: string): HoldfastError {
  return new HoldfastError(
    'USAGE_INVALID',
    `Refusing to run the hook script ${path}: it ${problem}. Hook scripts must be owned by root and writable by no one else. Fix: ${fix}.`,
  );
}

/**
 * Runs a hook script: checks it with {@link checkScriptSafety} (before every attempt, so what
 * runs is what was checked), executes it directly — no shell — in a process group of its own,
 * with stdin from /dev/null and `/` as working directory, and retries a failed or timed-out
 * attempt up to `retries` times. A script that fails is a result, not an exception: the caller
 * decides what it means for consistency. Throws USAGE_INVALID for an unsafe, missing or
 * unstartable script and CANCELLED when `signal` aborts (after the script's group is gone).
 */
export async function runHookScript(
  path: string,
  options: HookScriptOptions = {},
): Promise<HookResult> {
  const settings = {
    args: [...(options.args ?? [])],
    env: options.env ?? {},
    timeoutMs: whole('timeoutMs', options.timeoutMs ?? 600_000, 1),
    retries: whole('retries', options.retries ?? 0, 0),
    retryDelayMs: whole('retryDelayMs', options.retryDelayMs ?? 5_000, 0),
    killGraceMs: whole('killGraceMs', options.killGraceMs ?? 10_000, 0),
    signal: options.signal,
  };
  const started = performance.now();
  for (let attempt = 1; ; attempt++) {
    throwIfAborted(settings.signal);
    await checkScriptSafety(path);
    const run = await runOnce(path, settings, attempt);
    if (run.cancelled)
      throw new HoldfastError('CANCELLED', `The hook script ${path} was cancelled and killed.`);
    const { cancelled: _, ...outcome } = run;
    if (outcome.ok || attempt > settings.retries)
      return { ...outcome, attempts: attempt, durationMs: Math.round(performance.now() - started) };
    await sleep(settings.retryDelayMs, undefined, { signal: settings.signal }).catch(() => {});
  }
}

type Settings = Required<Omit<HookScriptOptions, 'signal' | 'args'>> & {
  readonly args: string[];
  readonly signal: AbortSignal | undefined;
};
type Attempt = Omit<HookResult, 'attempts' | 'durationMs'> & { readonly cancelled: boolean };

function runOnce(path: string, settings: Settings, attempt: number): Promise<Attempt> {
  return new Promise((resolve, reject) => {
    const child = spawn(path, settings.args, {
      cwd: '/',
      env: { ...BASE_ENV, HOME: homedir(), ...settings.env, HOLDFAST_HOOK_ATTEMPT: `${attempt}` },
      stdio: ['ignore', 'pipe', 'pipe'],
      // A group of its own: a timeout or cancellation ends everything the script started.
      detached: true,
    });
    const output = new OutputTail(child.stdout, child.stderr);
    let stopping: Promise<void> | undefined;
    let timedOut = false;
    const stop = (): void => {
      if (child.pid !== undefined) stopping ??= killGroup(child.pid, settings.killGraceMs);
    };
    const timer = setTimeout(() => ((timedOut = true), stop()), settings.timeoutMs);
    settings.signal?.addEventListener('abort', stop, { once: true });
    const cleanUp = (): void => {
      clearTimeout(timer);
      settings.signal?.removeEventListener('abort', stop);
    };
    child.once('error', (error) => {
      cleanUp();
      const why = `could not be started: ${describeError(error)}. Check that its #! line names an interpreter that exists`;
      reject(
        new HoldfastError('USAGE_INVALID', `The hook script ${path} ${why}.`, { cause: error }),
      );
    });
    child.once('exit', (exitCode, signal) => {
      cleanUp();
      void (async () => {
        await stopping;
        const cancelled = !timedOut && settings.signal?.aborted === true;
        const ok = exitCode === 0 && !timedOut && !cancelled;
        resolve({ ok, exitCode, signal, timedOut, output: await output.text(), cancelled });
      })();
    });
  });
}

/** The last OUTPUT_LIMIT bytes of two streams, interleaved as they arrive. */
class OutputTail {
  private kept = Buffer.alloc(0);
  private readonly ended: Promise<unknown>;
  private readonly streams: readonly Readable[];

  constructor(...streams: Readable[]) {
    this.streams = streams;
    for (const stream of streams)
      stream.on('data', (chunk: Buffer) => {
        const joined = Buffer.concat([this.kept, chunk]);
        this.kept = joined.subarray(Math.max(0, joined.length - OUTPUT_LIMIT));
      });
    // 'close' comes after an error too; events.once would reject on the error instead.
    this.ended = Promise.all(
      streams.map((stream) => new Promise((resolve) => stream.once('close', resolve))),
    );
  }

  /** Waits briefly for the last output, stops reading, and decodes what was kept. */
  async text(): Promise<string> {
    await Promise.race([this.ended, sleep(OUTPUT_DRAIN_MS)]);
    for (const stream of this.streams) stream.destroy();
    // Cutting at a byte count may have split a character: drop its remains.
    let start = 0;
    while (start < 3 && ((this.kept[start] ?? 0) & 0xc0) === 0x80) start++;
    return this.kept.subarray(start).toString('utf8');
  }
}

/** SIGTERM to the group; SIGKILL to what is left after the grace; returns once it is gone. */
async function killGroup(groupId: number, graceMs: number): Promise<void> {
  signalGroup(groupId, 'SIGTERM');
  if (await groupGone(groupId, graceMs)) return;
  signalGroup(groupId, 'SIGKILL');
  await groupGone(groupId, 2_000);
}

function signalGroup(groupId: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-groupId, signal);
  } catch {
    // ESRCH: every member has already gone.
  }
}

async function groupGone(groupId: number, withinMs: number): Promise<boolean> {
  const until = performance.now() + withinMs;
  while (await groupAlive(groupId)) {
    if (performance.now() >= until) return false;
    await sleep(POLL_MS);
  }
  return true;
}

/**
 * Whether a process of the group still runs. Zombies do not count: an orphan's zombie waits for
 * an init that may never reap it (a container whose PID 1 is not an init), yet it runs nothing.
 */
async function groupAlive(groupId: number): Promise<boolean> {
  const entries = await readdir('/proc').catch(() => undefined);
  if (!entries) return signalReaches(groupId);
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const line = await readFile(`/proc/${entry}/stat`, 'latin1').catch(() => '');
    // Fields after the command name, which may itself contain spaces and parentheses.
    const [state, , group] = line.slice(line.lastIndexOf(')') + 2).split(' ');
    if (Number(group) === groupId && state !== 'Z' && state !== 'X') return true;
  }
  return false;
}

function signalReaches(groupId: number): boolean {
  try {
    process.kill(-groupId, 0);
    return true;
  } catch {
    return false;
  }
}

/** Whole milliseconds or counts, within what a Node timer can wait (about 24.8 days). */
function whole(name: string, value: number, minimum: number): number {
  if (!Number.isInteger(value) || value < minimum || value > 2 ** 31 - 1)
    throw new HoldfastError(
      'USAGE_INVALID',
      `${name} must be a whole number from ${minimum} to ${2 ** 31 - 1}, not ${value}.`,
    );
  return value;
}
