import { describe, expect, it } from 'vitest';
import { collect, ERROR_CODES, HoldfastError, ManualClock, type ErrorCode } from '../core/index.js';
import type { Backend, ObjectInfo, OpOptions, PutOptions } from './backend.js';
import { failureCode } from './backend-conformance.testkit.js';
import { FaultyBackend, type FaultRule } from './faulty-backend.js';
import { MemoryBackend } from './memory-backend.js';
import {
  RetryingBackend,
  timerSleep,
  type RetryEvent,
  type RetryingBackendOptions,
} from './retrying-backend.js';

/** A sleep that records its delays and moves a manual clock by them, instantly. */
function recordingSleep() {
  const clock = new ManualClock(0);
  const delays: number[] = [];
  const sleep = async (ms: number): Promise<void> => {
    delays.push(ms);
    clock.advance(ms);
  };
  return { clock, delays, sleep };
}

function retrying(inner: Backend, options: Partial<RetryingBackendOptions> = {}) {
  const recorder = recordingSleep();
  const events: RetryEvent[] = [];
  const backend = new RetryingBackend(inner, {
    random: () => 0.5,
    sleep: recorder.sleep,
    clock: recorder.clock,
    baseDelayMs: 100,
    onRetry: (event) => events.push(event),
    ...options,
  });
  return { backend, delays: recorder.delays, events };
}

function faulty(rules: readonly FaultRule[]) {
  const memory = new MemoryBackend('inner');
  return { memory, faulty: new FaultyBackend(memory, { rules }) };
}

/**
 * A memory backend whose next calls fail as scripted: `before` fails a call without doing it,
 * `after` does the work and then fails (a lost acknowledgement). `listFailAfter` makes the next
 * listing fail after yielding that many objects.
 */
class ScriptedBackend extends MemoryBackend {
  readonly before: ErrorCode[] = [];
  readonly after: ErrorCode[] = [];
  listFailAfter: number | undefined;
  readonly calls: string[] = [];

  override put(name: string, data: Uint8Array, options?: PutOptions): Promise<void> {
    return this.#script('put', () => super.put(name, data, options));
  }
  override get(name: string, options?: OpOptions): Promise<Buffer> {
    return this.#script('get', () => super.get(name, options));
  }
  override delete(name: string, options?: OpOptions): Promise<void> {
    return this.#script('delete', () => super.delete(name, options));
  }
  override async *list(prefix: string, options?: OpOptions): AsyncGenerator<ObjectInfo> {
    this.calls.push('list');
    const failAfter = this.listFailAfter;
    this.listFailAfter = undefined;
    let yielded = 0;
    for await (const info of super.list(prefix, options)) {
      if (yielded === failAfter) throw scripted('BACKEND_TRANSIENT', 'list');
      yielded += 1;
      yield info;
    }
  }

  async #script<T>(op: string, work: () => Promise<T>): Promise<T> {
    this.calls.push(op);
    const early = this.before.shift();
    if (early !== undefined) throw scripted(early, op);
    const result = await work();
    const late = this.after.shift();
    if (late !== undefined) throw scripted(late, op);
    return result;
  }
}

function scripted(code: ErrorCode, op: string): HoldfastError {
  return new HoldfastError(code, `Scripted ${code} on ${op}.`);
}

const DATA = Buffer.from('the bytes being written');

describe('RetryingBackend', () => {
  it('retries transient failures with exponential backoff and full jitter', async () => {
    const { memory, faulty: inner } = faulty(
      [1, 2, 3].map((nth) => ({ op: 'get', nth, fault: 'fail-transient' })),
    );
    await memory.put('a', DATA);
    const { backend, delays, events } = retrying(inner, { maxDelayMs: 300 });
    expect(await backend.get('a')).toEqual(DATA);
    // Caps 100, 200, 400 → 300; half of each with random() = 0.5.
    expect(delays).toEqual([50, 100, 150]);
    expect(inner.callCount('get')).toBe(4);
    expect(events.map((e) => [e.op, e.name, e.attempt, e.error.code])).toEqual([
      ['get', 'a', 1, 'BACKEND_TRANSIENT'],
      ['get', 'a', 2, 'BACKEND_TRANSIENT'],
      ['get', 'a', 3, 'BACKEND_TRANSIENT'],
    ]);
    expect(backend.location).toBe('memory:inner');
  });

  it('draws every delay from the injected random source, below the cap', async () => {
    const memory = new ScriptedBackend();
    memory.before.push('BACKEND_TRANSIENT', 'BACKEND_TRANSIENT');
    const draws = [0, 0.999];
    const { backend, delays } = retrying(memory, { random: () => draws.shift() ?? 0 });
    await backend.put('a', DATA);
    expect(delays).toEqual([0, 199]);
  });

  it('gives up after maxAttempts with BACKEND_TRANSIENT, the last failure as cause', async () => {
    const { faulty: inner, memory } = faulty([{ op: 'put', fault: 'fail-transient' }]);
    const { backend, delays } = retrying(inner, { maxAttempts: 3 });
    const error = await backend.put('a', DATA).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'BACKEND_TRANSIENT' });
    expect((error as Error).message).toMatch(/after 3 attempts/);
    expect((error as Error).cause).toMatchObject({ message: expect.stringMatching(/Injected/) });
    expect(inner.callCount('put')).toBe(3);
    expect(delays).toHaveLength(2);
    expect(memory.objects().size).toBe(0);
  });

  it('starts no retry that would begin after maxElapsedMs', async () => {
    const memory = new ScriptedBackend();
    memory.before.push(...Array<ErrorCode>(5).fill('BACKEND_TRANSIENT'));
    const { backend, delays } = retrying(memory, {
      random: () => 0.999,
      baseDelayMs: 1000,
      maxElapsedMs: 2500,
    });
    expect(await failureCode(backend.get('a'))).toBe('BACKEND_TRANSIENT');
    // 999 ms fits; 999 + 1998 would pass 2500, so the second failure is final.
    expect(delays).toEqual([999]);
    expect(memory.calls).toEqual(['get', 'get']);
  });

  it.each(ERROR_CODES.filter((code) => code !== 'BACKEND_TRANSIENT'))(
    'does not retry %s',
    async (code) => {
      const memory = new ScriptedBackend();
      memory.before.push(code);
      const { backend, delays } = retrying(memory);
      expect(await failureCode(backend.put('a', DATA))).toBe(code);
      expect(memory.calls).toEqual(['put']);
      expect(delays).toEqual([]);
    },
  );

  it('does not retry real permanent answers or failures that are not HoldfastErrors', async () => {
    const memory = new ScriptedBackend();
    const { backend, delays } = retrying(memory);
    expect(await failureCode(backend.get('missing'))).toBe('BACKEND_NOT_FOUND');
    expect(await failureCode(backend.get('/bad'))).toBe('USAGE_INVALID');
    await backend.put('a', DATA, { ifNotExists: true });
    const again = backend.put('a', DATA, { ifNotExists: true });
    expect(await failureCode(again)).toBe('BACKEND_EXISTS');
    expect(memory.calls).toEqual(['get', 'get', 'put', 'put']);
    const thrower = new RetryingBackend(
      Object.assign(new MemoryBackend(), {
        stat: () => Promise.reject(new TypeError('socket hang up')),
      }),
      { random: () => 0.5, sleep: async () => {}, clock: new ManualClock(0) },
    );
    await expect(thrower.stat('a')).rejects.toThrow(TypeError);
    expect(delays).toEqual([]);
  });

  it('fails with CANCELLED at once when aborted during a backoff, and writes nothing', async () => {
    const memory = new ScriptedBackend();
    memory.before.push('BACKEND_TRANSIENT');
    const controller = new AbortController();
    let sleeping = (): void => {};
    const asleep = new Promise<void>((resolve) => (sleeping = resolve));
    // A sleep that never ends by itself: only the abort can end the wait.
    const sleep = (): Promise<void> => {
      sleeping();
      return new Promise<void>(() => {});
    };
    const { backend } = retrying(memory, { sleep });
    const put = backend.put('a', DATA, { signal: controller.signal });
    await asleep;
    controller.abort();
    expect(await failureCode(put)).toBe('CANCELLED');
    expect(memory.calls).toEqual(['put']);
    expect(memory.objects().size).toBe(0);
  });

  it('fails with CANCELLED, not a retry, when the signal is aborted before or between attempts', async () => {
    const memory = new ScriptedBackend();
    const controller = new AbortController();
    controller.abort();
    const { backend, delays } = retrying(memory);
    expect(await failureCode(backend.delete('a', { signal: controller.signal }))).toBe('CANCELLED');
    expect(await failureCode(collect(backend.list('', { signal: controller.signal })))).toBe(
      'CANCELLED',
    );
    expect(memory.calls).toEqual([]);
    // A transient failure that comes back after the caller aborted is not retried.
    const late = new AbortController();
    const flaky = Object.assign(new MemoryBackend(), {
      get: async () => {
        late.abort();
        throw scripted('BACKEND_TRANSIENT', 'get');
      },
    });
    const wrapped = new RetryingBackend(flaky, {
      random: () => 0.5,
      sleep: async (ms) => void delays.push(ms),
      clock: new ManualClock(0),
    });
    expect(await failureCode(wrapped.get('a', { signal: late.signal }))).toBe('CANCELLED');
    expect(delays).toEqual([]);
  });

  it('stops waiting when aborted, with the timer sleep too', async () => {
    const controller = new AbortController();
    const waiting = timerSleep(60_000, controller.signal);
    controller.abort();
    expect(await failureCode(waiting)).toBe('CANCELLED');
    await timerSleep(1);
  });

  describe('after an attempt whose outcome is unknown', () => {
    it('treats BACKEND_EXISTS on an ifNotExists retry as success when the bytes are ours', async () => {
      const memory = new ScriptedBackend();
      // The first attempt stores the object, then its acknowledgement is lost.
      memory.after.push('BACKEND_TRANSIENT');
      const { backend } = retrying(memory);
      await backend.put('locks/l1', DATA, { ifNotExists: true });
      expect(memory.calls).toEqual(['put', 'put', 'get']);
      expect(memory.objects().get('locks/l1')).toEqual(DATA);
    });

    it('keeps BACKEND_EXISTS when another writer holds the name', async () => {
      const memory = new ScriptedBackend();
      await memory.put('locks/l1', Buffer.from('someone else'));
      memory.calls.length = 0;
      memory.before.push('BACKEND_TRANSIENT');
      const { backend } = retrying(memory);
      const put = backend.put('locks/l1', DATA, { ifNotExists: true });
      expect(await failureCode(put)).toBe('BACKEND_EXISTS');
      expect(memory.calls).toEqual(['put', 'put', 'get']);
      expect(memory.objects().get('locks/l1')?.toString()).toBe('someone else');
    });

    it('keeps BACKEND_EXISTS on a first attempt without reading the object back', async () => {
      const memory = new ScriptedBackend();
      await memory.put('locks/l1', DATA);
      memory.calls.length = 0;
      const { backend } = retrying(memory);
      expect(await failureCode(backend.put('locks/l1', DATA, { ifNotExists: true }))).toBe(
        'BACKEND_EXISTS',
      );
      expect(memory.calls).toEqual(['put']);
    });

    it('treats BACKEND_NOT_FOUND on a delete retry as success: the object is gone', async () => {
      const memory = new ScriptedBackend();
      await memory.put('a', DATA);
      memory.after.push('BACKEND_TRANSIENT');
      const { backend } = retrying(memory);
      await backend.delete('a');
      expect(memory.calls).toEqual(['put', 'delete', 'delete']);
      expect(memory.objects().has('a')).toBe(false);
      // Without an earlier failed attempt, a missing object is still reported.
      expect(await failureCode(backend.delete('a'))).toBe('BACKEND_NOT_FOUND');
    });
  });

  it('restarts a listing that fails part-way and yields every object exactly once', async () => {
    const memory = new ScriptedBackend();
    const names = ['p/1', 'p/2', 'p/3', 'p/4', 'p/5'];
    for (const name of names) await memory.put(name, Buffer.from(name));
    memory.listFailAfter = 3;
    const { backend, delays } = retrying(memory);
    const listed = await collect(backend.list('p/'));
    expect(listed.map((info) => info.name)).toEqual(names);
    expect(listed.every((info) => info.size === 3)).toBe(true);
    expect(memory.calls.filter((call) => call === 'list')).toHaveLength(2);
    expect(delays).toEqual([50]);
  });

  it('gives up on a listing that keeps failing, having yielded each object once', async () => {
    const memory = new ScriptedBackend();
    for (const name of ['p/1', 'p/2']) await memory.put(name, DATA);
    const failing = Object.assign(memory, {
      list: async function* (prefix: string): AsyncGenerator<ObjectInfo> {
        yield* MemoryBackend.prototype.list.call(memory, prefix);
        throw scripted('BACKEND_TRANSIENT', 'list');
      },
    });
    const { backend } = retrying(failing, { maxAttempts: 3 });
    const seen: string[] = [];
    const error = await (async () => {
      for await (const info of backend.list('')) seen.push(info.name);
    })().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'BACKEND_TRANSIENT' });
    expect(seen).toEqual(['p/1', 'p/2']);
  });

  it('passes a short range on without retrying, so truncation stays detectable', async () => {
    const { memory, faulty: inner } = faulty([{ op: 'getRange', nth: 2, fault: 'truncate' }]);
    await memory.put('a', Buffer.from('0123456789'));
    const backend = new RetryingBackend(inner, {
      random: () => 0.5,
      sleep: async () => expect.fail('nothing to retry'),
      clock: new ManualClock(0),
    });
    expect((await backend.getRange('a', 6, 100)).toString()).toBe('6789');
    expect((await backend.getRange('a', 0, 10)).toString()).toBe('01234');
    expect(inner.callCount('getRange')).toBe(2);
  });

  it('rejects a policy that cannot work with USAGE_INVALID', () => {
    const base = { random: () => 0.5, sleep: async () => {}, clock: new ManualClock(0) };
    const memory = new MemoryBackend();
    expect(() => new RetryingBackend(memory, { ...base, maxAttempts: 0 })).toThrow(
      expect.objectContaining({ code: 'USAGE_INVALID' }),
    );
    expect(() => new RetryingBackend(memory, { ...base, maxAttempts: 1.5 })).toThrow(HoldfastError);
    expect(() => new RetryingBackend(memory, { ...base, baseDelayMs: -1 })).toThrow(HoldfastError);
    expect(() => new RetryingBackend(memory, { ...base, maxElapsedMs: NaN })).toThrow(
      HoldfastError,
    );
  });
});
