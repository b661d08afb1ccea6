import { chownSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ControlPlane } from './control-plane.js';
import { cleanUpPlanes, hookScript, machinePlane } from './machine-items.testkit.js';

afterEach(cleanUpPlanes);

/** A control plane with one small raw disk to protect, and a log the scripts append to. */
async function setup() {
  if (process.getuid?.() !== 0)
    throw new Error('These tests check the rule "scripts owned by root": run them as root.');
  // Failed backups are not retried here: each test looks at one attempt.
  const { root, plane } = await machinePlane({ jobRetries: 0 });
  const disk = join(root, 'vm.img');
  writeFileSync(disk, Buffer.alloc(2 * 1024 * 1024, 1));
  const log = join(root, 'log');
  const script = (name: string, body: string) =>
    hookScript(root, name, `echo "${name} $1" >> ${log}\n${body}`);
  const logged = () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []);
  return { root, plane, disk, script, logged };
}

async function protectAndBackUp(plane: ControlPlane, machine: Record<string, unknown>) {
  await plane.items.protect({
    name: 'vm',
    workload: 'machine',
    machine: machine as never,
    vault: 'main',
    policy: 'nightly',
  });
  const job = await plane.items.backupNow('vm');
  await plane.settle();
  return plane.jobs.show(job.id);
}

function errorOf(job: { result: Record<string, unknown> | null }): string {
  return JSON.stringify(job.result?.['error'] ?? null);
}

describe('pre and post scripts of machine backups', () => {
  it('give an application-consistent point when the pre script succeeds, and always run the post script', async () => {
    const { plane, disk, script, logged } = await setup();
    const job = await protectAndBackUp(plane, {
      disks: [disk],
      preScript: script('pre', 'exit 0'),
      postScript: script('post', 'exit 0'),
    });
    expect(job.state).toBe('completed');
    expect(job.result?.['consistency']).toBe('application');
    expect(logged()).toEqual(['pre pre', 'post post']);
    expect((await plane.items.points('vm'))[0]?.consistency).toBe('application');
  });

  it('fail the backup when the pre script fails, without running the post script', async () => {
    const { plane, disk, script, logged } = await setup();
    const job = await protectAndBackUp(plane, {
      disks: [disk],
      preScript: script('pre', 'echo "database would not flush" >&2; exit 3'),
      postScript: script('post', 'exit 0'),
    });
    expect(job.state).toBe('failed');
    expect(errorOf(job)).toMatch(/pre-snapshot script exited with 3: database would not flush/);
    expect(errorOf(job)).toMatch(/No point was taken/);
    expect(logged()).toEqual(['pre pre']);
    expect(await plane.items.points('vm')).toHaveLength(0);
  });

  it('fall back to file-system consistency with a freeze, or crash consistency without, when told to continue', async () => {
    const { plane, disk, script, logged } = await setup();
    const job = await protectAndBackUp(plane, {
      disks: [disk],
      preScript: script('pre', 'exit 1'),
      postScript: script('post', 'exit 0'),
      continueOnScriptFailure: true,
      freezeCommand: script('freeze', 'exit 0'),
    });
    expect(job.state).toBe('completed_with_warnings');
    expect(job.result?.['consistency']).toBe('file-system');
    expect(job.errors[0]?.message).toMatch(
      /pre-snapshot script exited with 1.*Continuing without application consistency/,
    );
    expect(logged()).toEqual(['pre pre', 'freeze freeze', 'freeze thaw']);

    const second = await setup();
    const crash = await protectAndBackUp(second.plane, {
      disks: [second.disk],
      preScript: second.script('pre', 'exit 1'),
      postScript: second.script('post', 'exit 0'),
      continueOnScriptFailure: true,
    });
    expect(crash.state).toBe('completed_with_warnings');
    expect(crash.result?.['consistency']).toBe('crash');
  });

  it('treat a pre script that runs too long as failed', async () => {
    const { plane, disk, script } = await setup();
    const started = Date.now();
    const job = await protectAndBackUp(plane, {
      disks: [disk],
      preScript: script('pre', 'sleep 30'),
      postScript: script('post', 'exit 0'),
      scriptTimeoutSeconds: 1,
    });
    expect(job.state).toBe('failed');
    expect(errorOf(job)).toMatch(/pre-snapshot script timed out/);
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it('refuse scripts not owned by root or writable by others, saying how to fix them', async () => {
    const { plane, disk, script } = await setup();
    const pre = script('pre', 'exit 0');
    chownSync(pre, 65534, 65534);
    const job = await protectAndBackUp(plane, {
      disks: [disk],
      preScript: pre,
      postScript: script('post', 'exit 0'),
      continueOnScriptFailure: true,
    });
    // With continue-on-failure an unsafe script is a failed one: the point is crash-consistent
    // and the job says why.
    expect(job.state).toBe('completed_with_warnings');
    expect(job.result?.['consistency']).toBe('crash');
    expect(job.errors[0]?.message).toMatch(/could not run.*owned by.*chown root:root/);
  });

  it('run the post script even when the capture fails after a successful pre script', async () => {
    const { plane, root, script, logged } = await setup();
    const job = await protectAndBackUp(plane, {
      disks: [join(root, 'missing.img')],
      preScript: script('pre', 'exit 0'),
      postScript: script('post', 'exit 0'),
    });
    expect(job.state).toBe('failed');
    expect(logged()).toEqual(['pre pre', 'post post']);
  });

  it('report a failing post script after a failed capture without promising a point', async () => {
    const { plane, root, script, logged } = await setup();
    const job = await protectAndBackUp(plane, {
      disks: [join(root, 'missing.img')],
      preScript: script('pre', 'exit 0'),
      postScript: script('post', 'echo cannot resume >&2; exit 3'),
    });
    expect(job.state).toBe('failed');
    expect(logged()).toEqual(['pre pre', 'post post']);
    const said = JSON.stringify(job.errors);
    expect(said).toMatch(/post-snapshot script exited with 3: cannot resume/);
    expect(said).not.toMatch(/point is kept/);
  });
});
