import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isHoldfastError } from '../core/index.js';
import { checkScriptSafety, runHookScript } from './hook-script.js';

const NOBODY = 65534;
let dir: string;

beforeAll(() => {
  if (process.getuid?.() !== 0)
    throw new Error(
      'The hook script tests must run as root (CI runs them as root): they need root-owned scripts and chown them to other users to test the safety rule.',
    );
  dir = mkdtempSync(join(tmpdir(), 'holdfast-hooks-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A root-owned shell script in the test directory. */
function script(name: string, body: string, mode = 0o755, where = dir): string {
  const path = join(where, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, mode);
  return path;
}

/** Running, as opposed to gone or a zombie nobody reaped (which runs nothing). */
function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function refusal(path: string): Promise<string> {
  const error = await checkScriptSafety(path).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isHoldfastError(error, 'USAGE_INVALID')) throw new Error(`${path} was not refused`);
  // runHookScript refuses it too, without running it.
  await expect(runHookScript(path)).rejects.toThrow(error.message);
  return error.message;
}

describe('runHookScript', () => {
  it('runs the script with its arguments and a small environment of its own', async () => {
    process.env['HOLDFAST_PASSWORD'] = 'must not leak';
    const path = script(
      'pre.sh',
      'echo "$1|$2|$HOLDFAST_ITEM|$HOLDFAST_HOOK_ATTEMPT|${HOLDFAST_PASSWORD:-unset}|$(pwd)"',
    );
    const result = await runHookScript(path, {
      args: ['pre-freeze', 'two words'],
      env: { HOLDFAST_ITEM: 'web02' },
    });
    delete process.env['HOLDFAST_PASSWORD'];
    expect(result).toMatchObject({ ok: true, exitCode: 0, signal: null, timedOut: false });
    expect(result.attempts).toBe(1);
    expect(result.output).toBe('pre-freeze|two words|web02|1|unset|/\n');
  });

  it('reports a failure with its exit code and output, without throwing', async () => {
    const path = script('fail.sh', 'echo "flushing tables"\necho "lock timeout" >&2\nexit 3');
    const result = await runHookScript(path);
    expect(result).toMatchObject({ ok: false, exitCode: 3, timedOut: false, attempts: 1 });
    expect(result.output).toBe('flushing tables\nlock timeout\n');
  });

  it('keeps the last 4 KiB of output', async () => {
    const path = script(
      'chatty.sh',
      'i=0; while [ $i -lt 500 ]; do echo "line $i of noise"; i=$((i+1)); done; echo END',
    );
    const { output } = await runHookScript(path);
    expect(Buffer.byteLength(output)).toBeLessThanOrEqual(4096);
    expect(output).toMatch(/line 499 of noise\nEND\n$/);
    expect(output).not.toMatch(/line 0 of/);
  });

  it('returns when the script exits, leaving what it started in the background running', async () => {
    const pidFile = join(dir, 'background.pid');
    // A pre script may start a process that holds a database lock until the post script.
    const path = script('holder.sh', `sleep 30 & echo $! > ${pidFile}\necho started`);
    const result = await runHookScript(path);
    const holder = Number(readFileSync(pidFile, 'utf8'));
    try {
      expect(result).toMatchObject({ ok: true, exitCode: 0, output: 'started\n' });
      expect(result.durationMs).toBeLessThan(5_000);
      expect(isRunning(holder)).toBe(true);
    } finally {
      process.kill(holder, 'SIGKILL');
    }
  });

  it('kills the whole process group at the timeout, children included', async () => {
    const pidFile = join(dir, 'child.pid');
    const path = script('hang.sh', `sleep 30 & echo $! > ${pidFile}\nsleep 30`);
    const result = await runHookScript(path, { timeoutMs: 500, killGraceMs: 1_000 });
    expect(result).toMatchObject({ ok: false, timedOut: true, exitCode: null, signal: 'SIGTERM' });
    expect(result.durationMs).toBeGreaterThanOrEqual(500);
    expect(result.durationMs).toBeLessThan(500 + 1_000 + 1_500);
    expect(isRunning(Number(readFileSync(pidFile, 'utf8')))).toBe(false);
  });

  it('sends SIGKILL after the grace period to a group that ignores SIGTERM', async () => {
    const pidFile = join(dir, 'stubborn.pid');
    // An ignored signal stays ignored across exec: the child sleep ignores SIGTERM too.
    const path = script('stubborn.sh', `trap '' TERM\nsleep 30 & echo $! > ${pidFile}\nsleep 30`);
    const result = await runHookScript(path, { timeoutMs: 300, killGraceMs: 700 });
    expect(result).toMatchObject({ ok: false, timedOut: true, signal: 'SIGKILL' });
    expect(result.durationMs).toBeGreaterThanOrEqual(1_000);
    expect(result.durationMs).toBeLessThan(300 + 700 + 2_500);
    expect(isRunning(Number(readFileSync(pidFile, 'utf8')))).toBe(false);
  });

  it('retries a failed attempt, and a timed-out one', async () => {
    const state = join(dir, 'attempts');
    const flaky = script(
      'flaky.sh',
      `n=$(cat ${state} 2>/dev/null || echo 0); n=$((n+1)); echo $n > ${state}\necho "attempt $HOLDFAST_HOOK_ATTEMPT"\n[ $n -ge 2 ]`,
    );
    const retried = await runHookScript(flaky, { retries: 3, retryDelayMs: 50 });
    expect(retried).toMatchObject({ ok: true, exitCode: 0, attempts: 2, output: 'attempt 2\n' });
    const slowFirst = script(
      'slow-first.sh',
      '[ "$HOLDFAST_HOOK_ATTEMPT" = 1 ] && sleep 30\nexit 0',
    );
    const afterTimeout = await runHookScript(slowFirst, {
      timeoutMs: 300,
      killGraceMs: 500,
      retries: 1,
      retryDelayMs: 10,
    });
    expect(afterTimeout).toMatchObject({ ok: true, timedOut: false, attempts: 2 });
    const never = script('never.sh', 'exit 1');
    expect(await runHookScript(never, { retries: 2, retryDelayMs: 10 })).toMatchObject({
      ok: false,
      exitCode: 1,
      attempts: 3,
    });
  });

  it('kills the script when cancelled and throws CANCELLED', async () => {
    const pidFile = join(dir, 'cancelled.pid');
    const path = script('long.sh', `sleep 30 & echo $! > ${pidFile}\nsleep 30`);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const started = performance.now();
    const error = await runHookScript(path, {
      signal: controller.signal,
      killGraceMs: 1_000,
    }).catch((e: unknown) => e);
    expect(isHoldfastError(error, 'CANCELLED')).toBe(true);
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(isRunning(Number(readFileSync(pidFile, 'utf8')))).toBe(false);
  });

  it('refuses settings a timer cannot honour', async () => {
    const path = script('any.sh', 'exit 0');
    await expect(runHookScript(path, { timeoutMs: 0 })).rejects.toThrow(/timeoutMs must be/);
    await expect(runHookScript(path, { timeoutMs: 2 ** 31 })).rejects.toThrow(/timeoutMs must/);
    await expect(runHookScript(path, { retries: 1.5 })).rejects.toThrow(/retries must be/);
  });

  it('throws for a script that cannot be started', async () => {
    const path = join(dir, 'no-interpreter.sh');
    writeFileSync(path, '#!/nonexistent/interpreter\n');
    chmodSync(path, 0o755);
    await expect(runHookScript(path)).rejects.toThrow(/could not be started.*#! line/);
  });
});

describe('checkScriptSafety', () => {
  it('accepts a root-owned script of mode 0755 in a root-owned directory', async () => {
    await expect(checkScriptSafety(script('good.sh', 'exit 0'))).resolves.toBeUndefined();
    await expect(
      checkScriptSafety(script('owner-only.sh', 'exit 0', 0o700)),
    ).resolves.toBeUndefined();
  });

  it('refuses a script not owned by root', async () => {
    const path = script('nobody.sh', 'touch /tmp/holdfast-should-not-exist');
    chownSync(path, NOBODY, NOBODY);
    expect(await refusal(path)).toBe(
      `Refusing to run the hook script ${path}: it is owned by uid 65534, not root. Hook scripts must be owned by root and writable by no one else. Fix: chown root:root ${path} && chmod 0755 ${path}.`,
    );
    expect(existsSync('/tmp/holdfast-should-not-exist')).toBe(false);
  });

  it('refuses group- and world-writable scripts, and scripts not executable', async () => {
    expect(await refusal(script('group.sh', 'exit 0', 0o775))).toMatch(
      /it is writable by its group\..*chmod 0755/,
    );
    expect(await refusal(script('world.sh', 'exit 0', 0o757))).toMatch(
      /it is writable by others\./,
    );
    expect(await refusal(script('both.sh', 'exit 0', 0o777))).toMatch(
      /writable by group and others\./,
    );
    expect(await refusal(script('plain.sh', 'exit 0', 0o644))).toMatch(
      /it is not executable by its owner\..*chmod 0755/,
    );
  });

  it('refuses symbolic links, missing files, directories and relative paths', async () => {
    const link = join(dir, 'link.sh');
    symlinkSync(script('target.sh', 'exit 0'), link);
    expect(await refusal(link)).toMatch(
      /it is a symbolic link \(to .*target\.sh\)\. .*Fix: configure the path of the script itself/,
    );
    expect(await refusal(join(dir, 'missing.sh'))).toMatch(/does not exist: create it/);
    mkdirSync(join(dir, 'a-directory'));
    expect(await refusal(join(dir, 'a-directory'))).toMatch(/it is not a regular file/);
    expect(await refusal('hooks/pre.sh')).toMatch(/it is not an absolute path/);
  });

  it('refuses a script in a directory others could write or that root does not own', async () => {
    const open = join(dir, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    expect(await refusal(script('in-open.sh', 'exit 0', 0o755, open))).toMatch(
      /it is in .*open, writable by group and others, who could replace it\..*chmod go-w/,
    );
    const foreign = join(dir, 'foreign');
    mkdirSync(foreign, { mode: 0o755 });
    chownSync(foreign, NOBODY, NOBODY);
    expect(await refusal(script('in-foreign.sh', 'exit 0', 0o755, foreign))).toMatch(
      /it is in .*foreign, owned by uid 65534, who could replace it/,
    );
  });
});
