import { describe, expect, it } from 'vitest';
import { collect, HoldfastError, isHoldfastError } from '../core/index.js';
import type { ObjectInfo, OpOptions, PutOptions } from './backend.js';
import { failureCode } from './backend-conformance.testkit.js';
import { LimitedBackend } from './limited-backend.js';
import { MemoryBackend } from './memory-backend.js';

/**
 * A memory backend that takes a moment per request and records how many run at once. Requests
 * numbered in `hangOn` (from 1, list fetches included) wait until their signal aborts, as a
 * well-behaved backend stuck on the network would; while `gate` is set, requests wait for it.
 */
class SlowBackend extends MemoryBackend {
  inFlight = 0;
  maxInFlight = 0;
  requests = 0;
  readonly hangOn = new Set<number>();
  gate: Promise<void> | undefined;

  override put(name: string, data: Uint8Array, options?: PutOptions): Promise<void> {
    return this.#slow(options, () => super.put(name, data, options));
  }
  override get(name: string, options?: OpOptions): Promise<Buffer> {
    return this.#slow(options, () => super.get(name, options));
  }
  override getRange(name: string, offset: number, length: number, options?: OpOptions) {
    return this.#slow(options, () => super.getRange(name, offset, length, options));
  }
  override stat(name: string, options?: OpOptions): Promise<ObjectInfo> {
    return this.#slow(options, () => super.stat(name, options));
  }
  override delete(name: string, options?: OpOptions): Promise<void> {
    return this.#slow(options, () => super.delete(name, options));
  }
  override async *list(prefix: string, options?: OpOptions): AsyncGenerator<ObjectInfo> {
    for await (const info of super.list(prefix, options)) {
      yield await this.#slow(options, async () => info);
    }
  }

  async #slow<T>(options: OpOptions | undefined, work: () => Promise<T>): Promise<T> {
    this.requests += 1;
    const hang = this.hangOn.has(this.requests);
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (hang) await untilAborted(options?.signal);
      await (this.gate ?? new Promise((resolve) => setTimeout(resolve, 1)));
      return await work();
    } finally {
      this.inFlight -= 1;
    }
  }
}

function untilAborted(signal: AbortSignal | undefined): Promise<never> {
  return new Promise((_, reject) => {
    if (signal === undefined) return expect.fail('a hanging request needs a signal');
    signal.addEventListener('abort', () =>
      reject(new HoldfastError('CANCELLED', 'Aborted.', { cause: signal.reason })),
    );
  });
}

/** A promise and the function that resolves it. */
function opening(): { promise: Promise<void>; open(): void } {
  let open = (): void => {};
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

const tick = (ms = 0): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('LimitedBackend', () => {
  it('never runs more than `concurrency` requests at once', async () => {
    const slow = new SlowBackend();
    const limited = new LimitedBackend(slow, { concurrency: 3 });
    const names = Array.from({ length: 12 }, (_, i) => `data/${i}`);
    await Promise.all(names.map((name) => limited.put(name, Buffer.from(name))));
    const results = await Promise.all([
      ...names.map((name) => limited.get(name).then(String)),
      ...names.map((name) => limited.getRange(name, 5, 10).then(String)),
      ...names.map((name) => limited.stat(name).then((info) => String(info.size))),
    ]);
    expect(results).toEqual([
      ...names,
      ...names.map((name) => name.slice(5)),
      ...names.map((name) => String(name.length)),
    ]);
    await Promise.all(names.map((name) => limited.delete(name)));
    expect(slow.maxInFlight).toBe(3);
    expect(slow.objects().size).toBe(0);
  });

  it('holds a slot only while a listing fetches, not while its consumer works', async () => {
    const slow = new SlowBackend();
    const limited = new LimitedBackend(slow, { concurrency: 1 });
    for (const name of ['a', 'b', 'c']) await slow.put(name, Buffer.from(name.repeat(3)));
    const read: string[] = [];
    // With one slot, a listing that kept it while yielding would deadlock this loop.
    for await (const info of limited.list('')) {
      read.push((await limited.get(info.name)).toString());
    }
    expect(read).toEqual(['aaa', 'bbb', 'ccc']);
    expect(slow.maxInFlight).toBe(1);
  }, 5_000);

  it('fails a request over its time limit with BACKEND_TRANSIENT and frees its slot', async () => {
    const slow = new SlowBackend();
    await slow.put('a', Buffer.from('x'));
    slow.hangOn.add(2);
    const limited = new LimitedBackend(slow, { concurrency: 1, timeoutMs: 50 });
    const error = await limited.get('a').catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'BACKEND_TRANSIENT' });
    expect((error as Error).message).toMatch(/longer than 50 ms/);
    expect(isHoldfastError((error as Error).cause, 'CANCELLED')).toBe(true);
    expect((await limited.get('a')).toString()).toBe('x');
  });

  it('keeps a real answer that comes back after the time limit passed', async () => {
    // A backend that does not notice the abort and answers anyway.
    const late = Object.assign(new MemoryBackend(), {
      get: async () => {
        await tick(40);
        return Buffer.from('late but whole');
      },
      stat: async () => {
        await tick(40);
        throw new HoldfastError('BACKEND_NOT_FOUND', 'Not there.');
      },
    });
    const limited = new LimitedBackend(late, { concurrency: 2, timeoutMs: 10 });
    expect((await limited.get('a')).toString()).toBe('late but whole');
    expect(await failureCode(limited.stat('a'))).toBe('BACKEND_NOT_FOUND');
  });

  it("keeps CANCELLED when it is the caller's signal that aborts", async () => {
    const slow = new SlowBackend();
    await slow.put('a', Buffer.from('x'));
    slow.hangOn.add(2);
    const limited = new LimitedBackend(slow, { concurrency: 2, timeoutMs: 60_000 });
    const controller = new AbortController();
    const get = limited.get('a', { signal: controller.signal });
    await tick();
    controller.abort();
    expect(await failureCode(get)).toBe('CANCELLED');
  });

  it('starts the time limit once a request has a slot, not while it waits for one', async () => {
    const slow = new SlowBackend();
    await slow.put('a', Buffer.from('x'));
    const gate = opening();
    slow.gate = gate.promise;
    const limited = new LimitedBackend(slow, { concurrency: 1, timeoutMs: 60 });
    const holder = limited.get('a');
    const waiter = limited.get('a');
    await tick(200);
    slow.gate = undefined;
    gate.open();
    expect(await failureCode(holder)).toBe('BACKEND_TRANSIENT');
    expect((await waiter).toString()).toBe('x');
  });

  it('ends the wait for a slot on abort and passes the slot on', async () => {
    const slow = new SlowBackend();
    await slow.put('a', Buffer.from('x'));
    const gate = opening();
    slow.gate = gate.promise;
    const limited = new LimitedBackend(slow, { concurrency: 1 });
    const holder = limited.get('a');
    const controller = new AbortController();
    const waiter = limited.put('b', Buffer.from('y'), { signal: controller.signal });
    await tick();
    controller.abort();
    expect(await failureCode(waiter)).toBe('CANCELLED');
    gate.open();
    expect((await holder).toString()).toBe('x');
    expect((await limited.stat('a')).size).toBe(1);
    expect(slow.objects().has('b')).toBe(false);
    expect(slow.requests).toBe(3);
  });

  it('ends a listing whose fetch runs over the time limit with BACKEND_TRANSIENT', async () => {
    const slow = new SlowBackend();
    for (const name of ['a', 'b', 'c']) await slow.put(name, Buffer.from(name));
    slow.hangOn.add(5);
    const limited = new LimitedBackend(slow, { concurrency: 1, timeoutMs: 50 });
    const seen: string[] = [];
    const error = await (async () => {
      for await (const info of limited.list('')) seen.push(info.name);
    })().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'BACKEND_TRANSIENT' });
    expect(seen).toEqual(['a']);
  });

  it("ends a listing with CANCELLED on the caller's abort", async () => {
    const slow = new SlowBackend();
    for (const name of ['a', 'b']) await slow.put(name, Buffer.from(name));
    const limited = new LimitedBackend(slow, { concurrency: 1, timeoutMs: 60_000 });
    const controller = new AbortController();
    const seen: string[] = [];
    const error = await (async () => {
      for await (const info of limited.list('', { signal: controller.signal })) {
        seen.push(info.name);
        controller.abort();
      }
    })().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'CANCELLED' });
    expect(seen).toEqual(['a']);
    expect(await collect(limited.list(''))).toHaveLength(2);
  });

  it('passes capabilities and location through, and rejects unusable limits', () => {
    const memory = new MemoryBackend('x');
    const limited = new LimitedBackend(memory, { concurrency: 2 });
    expect(limited.capabilities).toBe(memory.capabilities);
    expect(limited.location).toBe('memory:x');
    for (const options of [
      { concurrency: 0 },
      { concurrency: 1.5 },
      { concurrency: 1, timeoutMs: 0 },
    ]) {
      expect(() => new LimitedBackend(memory, options)).toThrow(
        expect.objectContaining({ code: 'USAGE_INVALID' }),
      );
    }
  });
});
