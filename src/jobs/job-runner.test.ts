import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Catalog, type JobRecord } from '../catalog/index.js';
import { HoldfastError, ManualClock } from '../core/index.js';
import { JobRunner, type JobHandler } from './job-runner.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function setup(handler: JobHandler, maxConcurrent = 2) {
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-runner-'));
  dirs.push(dir);
  const clock = new ManualClock(1_700_000_000_000);
  const catalog = await Catalog.open({ kind: 'sqlite', path: join(dir, 'c.sqlite') }, clock);
  const finished: JobRecord[] = [];
  const make = () =>
    new JobRunner({
      catalog,
      clock,
      handlers: { verify: handler },
      maxConcurrent,
      retry: { baseDelayMs: 1000, maxDelayMs: 3000 },
      onFinished: (job) => finished.push(job),
    });
  const queue = (maxRetries = 2) =>
    catalog.jobs.create({ type: 'verify', trigger: 'manual', phases: ['one', 'two'], maxRetries });
  return { catalog, clock, make, queue, finished };
}

describe('JobRunner', () => {
  it('runs a job through its phases to completed, with warnings when items failed', async () => {
    const { catalog, make, queue, finished } = await setup(async (ctx) => {
      await ctx.startPhase('one');
      ctx.progress('one', { bytes: 10, items: 1 });
      await ctx.finishPhase('one', { made: 'x' });
      await ctx.startPhase('two');
      if (ctx.job.params['warn']) ctx.itemError({ path: '/a', message: 'unreadable' });
      await ctx.finishPhase('two');
      return { result: { answer: 42 } };
    });
    const runner = make();
    const job = await queue();
    const warned = await catalog.jobs.create({
      type: 'verify',
      trigger: 'manual',
      phases: ['one', 'two'],
      maxRetries: 0,
      params: { warn: true },
    });
    await runner.tick();
    await runner.idle();
    const done = await catalog.jobs.byId(job.id);
    expect(done?.state).toBe('completed');
    expect(done?.phases.map((p) => p.state)).toEqual(['done', 'done']);
    expect(done?.result).toEqual({ answer: 42, errorCount: 0 });
    const w = await catalog.jobs.byId(warned.id);
    expect(w?.state).toBe('completed_with_warnings');
    expect(w?.errors).toEqual([{ path: '/a', message: 'unreadable' }]);
    expect(finished.map((j) => j.state).sort()).toEqual(['completed', 'completed_with_warnings']);
  });

  it('retries a failing job with growing backoff, resuming after the finished phase, then fails', async () => {
    const seen: Array<Record<string, unknown> | undefined> = [];
    const { catalog, clock, make, queue } = await setup(async (ctx) => {
      seen.push(ctx.checkpoint('one'));
      if (!ctx.checkpoint('one')) {
        await ctx.startPhase('one');
        await ctx.finishPhase('one', { snapshot: 'abc' });
      }
      await ctx.startPhase('two');
      throw new HoldfastError('BACKEND_TRANSIENT', 'storage timed out');
    });
    const runner = make();
    const job = await queue(2);
    const runAfters: number[] = [];
    for (let attempt = 0; attempt < 3; attempt++) {
      await runner.tick();
      await runner.idle();
      const now = await catalog.jobs.byId(job.id);
      runAfters.push((now?.runAfter ?? 0) - clock.now());
      if (now?.state === 'waiting_retry') {
        await runner.tick(); // not due yet: nothing starts
        expect(runner.active).toBe(0);
        clock.advance(now.runAfter - clock.now());
      }
    }
    const final = await catalog.jobs.byId(job.id);
    expect(final?.state).toBe('failed');
    expect(final?.retryCount).toBe(2);
    expect(final?.attempts.map((a) => a.outcome)).toEqual(['failed', 'failed', 'failed']);
    expect(final?.attempts[0]?.error.code).toBe('BACKEND_TRANSIENT');
    expect(runAfters.slice(0, 2)).toEqual([1000, 2000]);
    expect(seen).toEqual([undefined, { snapshot: 'abc' }, { snapshot: 'abc' }]);
  });

  it('cancels a waiting job at once and a running one when its handler stops', async () => {
    const { catalog, make, queue } = await setup(
      (ctx) =>
        new Promise((_, reject) => {
          ctx.signal.addEventListener('abort', () =>
            reject(new HoldfastError('CANCELLED', 'stopped')),
          );
        }),
      1,
    );
    const runner = make();
    const first = await queue();
    const second = await queue();
    await runner.tick();
    expect(runner.active).toBe(1);
    await runner.cancel(second.id);
    expect((await catalog.jobs.byId(second.id))?.state).toBe('cancelled');
    await runner.cancel(first.id);
    await runner.idle();
    expect((await catalog.jobs.byId(first.id))?.state).toBe('cancelled');
    await expect(runner.cancel(first.id)).rejects.toThrow(/already ended/);
  });

  it('records jobs a stopped server left running as interrupted and retries them', async () => {
    let calls = 0;
    const { catalog, make, queue } = await setup(async (ctx) => {
      calls += 1;
      if (calls === 1)
        await new Promise((_, reject) =>
          ctx.signal.addEventListener('abort', () => reject(new Error('aborted'))),
        );
      return { result: {} };
    });
    const first = make();
    const job = await queue(0);
    await first.tick();
    await first.shutdown();
    const afterShutdown = await catalog.jobs.byId(job.id);
    expect(afterShutdown?.state).toBe('waiting_retry');
    expect(afterShutdown?.attempts.map((a) => a.outcome)).toEqual(['interrupted']);
    // A crash (no shutdown) leaves the job `running`: the next start finds it.
    const crashed = await queue(0);
    await catalog.jobs.claim(crashed);
    const second = make();
    expect(await second.recoverInterrupted()).toBe(1);
    await second.tick();
    await second.idle();
    expect((await catalog.jobs.byId(job.id))?.state).toBe('completed');
    const recovered = await catalog.jobs.byId(crashed.id);
    expect(recovered?.state).toBe('completed');
    expect(recovered?.attempts.map((a) => a.outcome)).toEqual(['interrupted']);
    expect(recovered?.retryCount).toBe(1);
  });
});
