/**
 * Helpers for the end-to-end tests: run the built `holdfast` command as a child process, give
 * each test its own temporary directory and vault, and make seeded data.
 *
 * Nothing here reaches into the product: tests see what a user sees (exit code, stdout, stderr,
 * the restore target, and the vault's files or objects — read, for object stores, through the
 * backends the product uses, which their conformance suite tests on their own).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestStore } from '../../src/backends/object-stores.testkit.js';
import {
  copyVaultObjects,
  openVaultObjects,
  type VaultObjects,
} from '../../src/backends/vault-objects.testkit.js';

/** The repository root (two levels above this file). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The command's entry point, as `npx holdfast` runs it. */
export const CLI_BIN = join(REPO_ROOT, 'bin', 'holdfast.js');
/** The compiled CLI the entry point imports. */
export const CLI_MAIN = join(REPO_ROOT, 'dist', 'cli', 'main.js');

/** The passphrase of every vault the tests create. */
export const PASSPHRASE = 'e2e correct horse battery staple';

/**
 * Fails with a clear message when the CLI has not been built. `npm test` builds before running
 * vitest; running vitest alone after a clean checkout would otherwise fail in confusing ways.
 */
export function assertBuilt(): void {
  if (!existsSync(CLI_MAIN)) {
    throw new Error(
      `The holdfast CLI is not built: ${CLI_MAIN} is missing. Run 'npx tsc -b' (npm test does this) before the end-to-end tests.`,
    );
  }
}

/** What one run of the command did. */
export interface RunResult {
  /** Exit code, or null when the process was ended by a signal. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** True when the run exceeded its time limit and was killed by the helper. */
  readonly timedOut: boolean;
  readonly durationMs: number;
}

/** Environment for a run: `undefined` removes a variable inherited from the test process. */
export type RunEnv = Record<string, string | undefined>;

/** Options of {@link start} and {@link run}. */
export interface RunOptions {
  readonly cwd?: string;
  /** Kill the process (SIGKILL) after this long; default 180 s. */
  readonly timeoutMs?: number;
  /** Called with each chunk of stderr as it arrives (for progress-driven kills). */
  readonly onStderr?: (chunk: string) => void;
}

/** A started command: the child process and a promise of its result. */
export interface Started {
  readonly child: ChildProcess;
  readonly result: Promise<RunResult>;
}

/** Children started by {@link start} that have not ended yet. */
const running = new Set<ChildProcess>();

/**
 * Kills (SIGKILL, after SIGCONT in case a test stopped it) every command this test file started
 * that is still running; for afterAll hooks, so a failed test leaves no process behind.
 */
export function killStartedProcesses(): void {
  for (const child of running) {
    child.kill('SIGCONT');
    child.kill('SIGKILL');
  }
}

/** The test process's environment without any HOLDFAST_* variable, plus `env`. */
export function cliEnv(env: RunEnv = {}): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('HOLDFAST_') && value !== undefined) out[key] = value;
  }
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) delete out[key];
    else out[key] = value;
  }
  return out;
}

/** Starts `holdfast <args>` with stdin closed (never a terminal) and collects its output. */
export function start(
  args: readonly string[],
  env: RunEnv = {},
  options: RunOptions = {},
): Started {
  assertBuilt();
  const began = Date.now();
  const child = spawn(process.execPath, [CLI_BIN, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: cliEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on('data', (chunk: Buffer) => out.push(chunk));
  child.stderr!.on('data', (chunk: Buffer) => {
    err.push(chunk);
    options.onStderr?.(chunk.toString('utf8'));
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, options.timeoutMs ?? 180_000);
  const result = new Promise<RunResult>((resolvePromise, reject) => {
    child.on('error', (error) => {
      clearTimeout(timer);
      running.delete(child);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      resolvePromise({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        timedOut,
        durationMs: Date.now() - began,
      });
    });
  });
  return { child, result };
}

/** Runs `holdfast <args>` to completion. */
export function run(
  args: readonly string[],
  env: RunEnv = {},
  options: RunOptions = {},
): Promise<RunResult> {
  return start(args, env, options).result;
}

/** A short description of a run for assertion messages. */
export function describeRun(args: readonly string[], r: RunResult): string {
  const tail = (s: string): string => (s.length > 4000 ? '…' + s.slice(-4000) : s);
  return (
    `holdfast ${args.join(' ')}\n  exit ${String(r.code)}${r.signal ? ` (signal ${r.signal})` : ''}` +
    `${r.timedOut ? ' TIMED OUT' : ''} after ${r.durationMs} ms\n` +
    `  stdout: ${tail(r.stdout)}\n  stderr: ${tail(r.stderr)}`
  );
}

/** Throws with the run's output when its exit code is not `expected`. */
export function expectExit(args: readonly string[], r: RunResult, expected: number): RunResult {
  if (r.code !== expected) {
    throw new Error(`expected exit code ${expected}\n${describeRun(args, r)}`);
  }
  return r;
}

/** Parses stdout as one JSON document, failing with the run's output if it is not one. */
export function parseJson<T>(args: readonly string[], r: RunResult): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`stdout is not one JSON document\n${describeRun(args, r)}`);
  }
}

/** The summary `backup --json` prints. */
export interface BackupSummary {
  readonly id: string;
  readonly time: string;
  readonly paths: string[];
  readonly parent: string | null;
  readonly files: number;
  readonly dirs: number;
  readonly others: number;
  readonly bytes: number;
  readonly filesRead: number;
  readonly newBytes: number;
  readonly storedBytes: number;
  readonly errors: number;
  readonly errorList: Array<{ path: string; error: string }>;
}

/** One row of `points --json`. */
export interface PointRow {
  readonly id: string;
  readonly time: string;
  readonly host: string;
  readonly paths: string[];
  readonly tags: string[];
  readonly parent: string | null;
  readonly stats: { files: number; dirs: number; bytes: number; filesRead: number };
}

/** The summary `restore --json` prints. */
export interface RestoreSummary {
  readonly point: string;
  readonly files: number;
  readonly dirs: number;
  readonly others: number;
  readonly bytes: number;
  readonly skipped: number;
  readonly errors: number;
  readonly verified: { checked: number; bytes: number; mismatches: number } | null;
  readonly failures: Array<{ path: string; error: string }>;
}

/** One problem of a `check --json` report. */
export interface CheckProblem {
  readonly kind: string;
  readonly severity: 'error' | 'warning';
  readonly message: string;
  readonly index?: string;
  readonly pack?: string;
  readonly blob?: string;
  readonly point?: string;
}

/** The report `check --json` prints. */
export interface CheckReport {
  readonly ok: boolean;
  readonly problems: CheckProblem[];
  readonly damagedPacks: string[];
  readonly damagedBlobs: string[];
  readonly affected: Array<{ point: string; time: string; paths: string[] }>;
}

/**
 * A temporary directory with a vault location inside it, and shortcuts to run the command
 * against that vault. Remove it with {@link cleanup}.
 */
export class Sandbox {
  /** Environment that selects this sandbox's vault and passphrase. */
  readonly env: RunEnv;

  /** Accessors opened by {@link objects}, by location. */
  private readonly opened = new Map<string, VaultObjects>();

  private constructor(
    readonly root: string,
    readonly vault: string,
    private readonly mounted: boolean,
    private readonly store: TestStore | undefined,
  ) {
    this.env = { HOLDFAST_VAULT: vault, HOLDFAST_PASSWORD: PASSPHRASE, ...store?.env };
  }

  /**
   * Creates a fresh sandbox under the system temporary directory. With `tmpfs` (a size such as
   * '3g'), a tmpfs is mounted on it first: trees of 100 000 files are then created, restored
   * and removed in seconds whatever the disk is doing. Needs root.
   */
  static async create(
    name: string,
    options: { tmpfs?: string; store?: TestStore } = {},
  ): Promise<Sandbox> {
    assertBuilt();
    const root = await mkdtemp(join(tmpdir(), `holdfast-e2e-${name}-`));
    if (options.tmpfs !== undefined) {
      try {
        mountTmpfs(root, options.tmpfs);
      } catch (error) {
        await rm(root, { recursive: true, force: true });
        throw error;
      }
    }
    // A store of another kind (object storage) puts the vault there instead of in the sandbox.
    const vault = options.store?.vault ?? join(root, 'vault');
    return new Sandbox(root, vault, options.tmpfs !== undefined, options.store);
  }

  /** A path inside the sandbox. */
  path(...parts: string[]): string {
    return join(this.root, ...parts);
  }

  /**
   * A location for another vault `name` where this sandbox's vault lives: a directory in the
   * sandbox, or a prefix in the same container or bucket.
   */
  location(name: string): string {
    return this.store?.vaultAt(name) ?? this.path(name);
  }

  /**
   * The objects (files, for a directory) of this sandbox's vault or of another `location` on its
   * store, read and changed directly: no command, no lock.
   */
  objects(location: string = this.vault): VaultObjects {
    let objects = this.opened.get(location);
    if (objects === undefined) {
      objects = this.store?.objects(location) ?? openVaultObjects(location);
      this.opened.set(location, objects);
    }
    return objects;
  }

  /** Runs the command against this sandbox's vault (extra variables override). */
  cli(args: readonly string[], env: RunEnv = {}, options: RunOptions = {}): Promise<RunResult> {
    return run(args, { ...this.env, ...env }, options);
  }

  /** Starts the command against this sandbox's vault without waiting for it. */
  spawn(args: readonly string[], env: RunEnv = {}, options: RunOptions = {}): Started {
    return start(args, { ...this.env, ...env }, options);
  }

  /** Runs the command and requires exit code `code`. */
  async ok(args: readonly string[], code = 0, env: RunEnv = {}): Promise<RunResult> {
    return expectExit(args, await this.cli(args, env), code);
  }

  /** Runs the command with `--json`, requires exit code `code`, and parses stdout. */
  async json<T>(args: readonly string[], code = 0, env: RunEnv = {}): Promise<T> {
    const full = ['--json', ...args];
    return parseJson<T>(full, expectExit(full, await this.cli(full, env), code));
  }

  /** Creates the vault. */
  async init(): Promise<void> {
    await this.ok(['init']);
  }

  /** Backs up `paths` and returns the summary; requires exit code `code`. */
  backup(
    paths: readonly string[],
    extra: readonly string[] = [],
    code = 0,
  ): Promise<BackupSummary> {
    return this.json<BackupSummary>(['backup', ...paths, ...extra], code);
  }

  /** Lists the points. */
  points(): Promise<PointRow[]> {
    return this.json<PointRow[]>(['points']);
  }

  /** Ids of the points by listing the vault's `points/` (no command, no lock). */
  pointFiles(location: string = this.vault): Promise<string[]> {
    return this.vaultFiles('points', location);
  }

  /** Names of the objects below one directory of the vault (`index`, `locks`, …), sorted. */
  vaultFiles(dir: string, location: string = this.vault): Promise<string[]> {
    return this.objects(location).list(dir);
  }

  /** Ids of the packs in the vault, sorted. */
  async packs(location: string = this.vault): Promise<string[]> {
    const names = await this.objects(location).list('packs');
    return names.map((name) => name.slice(name.lastIndexOf('/') + 1)).sort();
  }

  /** Copies every object of this sandbox's vault to the empty vault location `to`. */
  copyVault(to: string): Promise<void> {
    return copyVaultObjects(this.objects(), this.objects(to));
  }

  /** Removes the sandbox (unmounting its tmpfs first, which frees it at once). */
  async cleanup(): Promise<void> {
    for (const objects of this.opened.values()) await objects.close();
    this.opened.clear();
    if (this.mounted) unmount(this.root);
    await rm(this.root, { recursive: true, force: true });
  }
}

/** The name of a pack's object in a vault. */
export function packKey(id: string): string {
  return `packs/${id.slice(0, 2)}/${id}`;
}

/** A seeded pseudo-random generator (mulberry32): the same seed gives the same sequence. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A seeded integer in [min, max]. */
export function randomInt(next: () => number, min: number, max: number): number {
  return min + Math.floor(next() * (max - min + 1));
}

/**
 * A seeded byte stream: the AES-256-CTR keystream under a key derived from `seed`. Fast enough
 * for hundreds of megabytes, and incompressible like real media files.
 */
export class SeededBytes {
  private readonly cipher;

  constructor(seed: number | string) {
    const key = createHash('sha256').update(`holdfast-e2e:${seed}`).digest();
    this.cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  }

  /** The next `size` bytes of the stream. */
  next(size: number): Buffer {
    return this.cipher.update(Buffer.alloc(size));
  }
}

/** `size` seeded bytes. */
export function seededBytes(size: number, seed: number | string): Buffer {
  return new SeededBytes(seed).next(size);
}

/** Writes a file of `size` seeded bytes in 4 MiB pieces (bounded memory for large files). */
export function writeSeededFile(path: string, size: number, seed: number | string): void {
  const stream = new SeededBytes(seed);
  const fd = openSync(path, 'w');
  try {
    for (let done = 0; done < size;) {
      const piece = stream.next(Math.min(4 * 1024 * 1024, size - done));
      writeSync(fd, piece);
      done += piece.byteLength;
    }
  } finally {
    closeSync(fd);
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `condition` every `intervalMs` until it holds or `timeoutMs` passes; returns whether it held. */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
  intervalMs = 5,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return true;
    await sleep(intervalMs);
  }
  return condition();
}

/** Fails unless the tests run as root (mounting file systems, restoring ownership). */
export function assertRoot(what: string): void {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    throw new Error(
      `${what} needs root (uid 0), but the tests run as uid ${String(process.getuid?.())}. Run the end-to-end tests as root.`,
    );
  }
}

/** Where the path of a backed-up directory ends up below a restore target. */
export function restoredPath(target: string, source: string): string {
  return join(target, source);
}

/** Mounts a tmpfs of `size` (e.g. '8m') on the existing directory `dir`; needs root. */
export function mountTmpfs(dir: string, size: string): void {
  assertRoot(`Mounting a ${size} tmpfs to fill it up`);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir], {
      stdio: 'pipe',
    });
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new Error(
      `Cannot mount a tmpfs on ${dir} (needed to fill a file system): ${stderr.trim() || String(error)}. The tests need root and the mount(8) command.`,
    );
  }
}

/** Unmounts `dir` if something is mounted there (lazily when it is still busy). */
export function unmount(dir: string): void {
  try {
    execFileSync('umount', [dir], { stdio: 'pipe' });
  } catch {
    try {
      execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
    } catch {
      // Nothing mounted there (the mount itself failed): nothing to undo.
    }
  }
}

/** Writes files described as `{ 'a/b.txt': content }` below `root`, creating directories. */
export function writeTree(root: string, files: Record<string, string | Buffer>): void {
  for (const [rel, content] of Object.entries(files)) {
    const full = join(root, rel);
    mkdirSync(dirname(full), { recursive: true });
    writeFileSync(full, content);
  }
}

/**
 * Writes `count` files of seeded, incompressible content below `root` (spread over a few
 * directories) with sizes drawn between `minSize` and `maxSize`; returns the total bytes.
 */
export function writeSeededTree(
  root: string,
  options: { count: number; minSize: number; maxSize: number; seed: number; dirs?: number },
): number {
  const next = prng(options.seed);
  const dirs = options.dirs ?? 4;
  let total = 0;
  for (let i = 0; i < options.count; i += 1) {
    const dir = join(root, `dir${i % dirs}`);
    mkdirSync(dir, { recursive: true });
    const size = randomInt(next, options.minSize, options.maxSize);
    writeSeededFile(
      join(dir, `file${String(i).padStart(4, '0')}.bin`),
      size,
      `${options.seed}/${i}`,
    );
    total += size;
  }
  return total;
}
