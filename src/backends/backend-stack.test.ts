import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { collect, isHoldfastError, ManualClock, type ErrorCode } from '../core/index.js';
import type { Backend, ObjectInfo, OpOptions, PutOptions } from './backend.js';
import {
  describeBackendConformance,
  failureCode,
  seededRandom,
} from './backend-conformance.testkit.js';
import { stackBackend, type BackendStackOptions } from './backend-stack.js';
import { FAULT_OPS, FaultyBackend, type FaultRule } from './faulty-backend.js';
import { MemoryBackend } from './memory-backend.js';

/** Options with instant backoffs, seeded jitter and a clock that does not move. */
function instant(extra: Partial<BackendStackOptions> = {}): BackendStackOptions {
  return { random: seededRandom(1), sleep: async () => {}, clock: new ManualClock(0), ...extra };
}

describeBackendConformance('stackBackend(MemoryBackend)', async () => ({
  backend: stackBackend(new MemoryBackend(), instant()),
  cleanup: async () => {},
}));

describeBackendConformance(
  'stackBackend(FaultyBackend(MemoryBackend, 10% transient))',
  async () => {
    const faulty = new FaultyBackend(new MemoryBackend(), {
      rules: [{ op: 'any', probability: 0.1, fault: 'fail-transient' }],
      random: seededRandom(10),
    });
    return {
      backend: stackBackend(faulty, instant({ timeoutMs: 30_000 })),
      cleanup: async () => {},
    };
  },
);

/**
 * Wraps a backend, delaying each request a little and recording how many run at once (a listing
 * counts while it fetches each object). Requests numbered in `hangOn` wait for their abort.
 */
class InFlightBackend extends MemoryBackend {
  inFlight = 0;
  maxInFlight = 0;
  requests = 0;
  readonly hangOn = new Set<number>();

  constructor(readonly inner: Backend) {
    super();
  }
  override put(name: string, data: Uint8Array, options?: PutOptions): Promise<void> {
    return this.#track(options, () => this.inner.put(name, data, options));
  }
  override get(name: string, options?: OpOptions): Promise<Buffer> {
    return this.#track(options, () => this.inner.get(name, options));
  }
  override stat(name: string, options?: OpOptions): Promise<ObjectInfo> {
    return this.#track(options, () => this.inner.stat(name, options));
  }

  async #track<T>(options: OpOptions | undefined, work: () => Promise<T>): Promise<T> {
    this.requests += 1;
    const hang = this.hangOn.has(this.requests);
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await new Promise((resolve) => setTimeout(resolve, 1));
      if (hang) {
        await new Promise((resolve) => options?.signal?.addEventListener('abort', resolve));
      }
      return await work();
    } finally {
      this.inFlight -= 1;
    }
  }
}

describe('stackBackend', () => {
  it('passes capabilities and location through', () => {
    const memory = new MemoryBackend('here');
    const stacked = stackBackend(memory, instant());
    expect(stacked.capabilities).toBe(memory.capabilities);
    expect(stacked.location).toBe('memory:here');
  });

  it('counts every attempt, the bytes moved and the retries', async () => {
    const faulty = new FaultyBackend(new MemoryBackend(), {
      rules: [{ op: 'put', nth: 1, fault: 'fail-transient' }],
    });
    const stacked = stackBackend(faulty, instant());
    await stacked.put('a', Buffer.alloc(10));
    await stacked.get('a');
    await stacked.getRange('a', 8, 10);
    await collect(stacked.list(''));
    expect(await failureCode(stacked.stat('missing'))).toBe('BACKEND_NOT_FOUND');
    expect(stacked.counters).toEqual({
      requests: { put: 2, get: 1, getRange: 1, list: 1, stat: 1, delete: 0 },
      failures: { BACKEND_TRANSIENT: 1, BACKEND_NOT_FOUND: 1 },
      bytesWritten: 10,
      bytesRead: 12,
      retries: 1,
    });
  });

  it('retries a request that timed out', async () => {
    const slow = new InFlightBackend(new MemoryBackend());
    await slow.inner.put('a', Buffer.from('x'));
    slow.hangOn.add(1);
    const stacked = stackBackend(slow, instant({ timeoutMs: 50 }));
    expect((await stacked.get('a')).toString()).toBe('x');
    expect(stacked.counters.retries).toBe(1);
    expect(stacked.counters.failures).toEqual({ BACKEND_TRANSIENT: 1 });
  });

  it('holds no slot while a retry backs off', async () => {
    const faulty = new FaultyBackend(new MemoryBackend(), {
      rules: [{ op: 'get', nth: 1, fault: 'fail-transient' }],
    });
    await faulty.put('a', Buffer.from('x'));
    let wake = (): void => {};
    let asleep = (): void => {};
    const sleeping = new Promise<void>((resolve) => (asleep = resolve));
    const sleep = (): Promise<void> => {
      asleep();
      return new Promise<void>((resolve) => (wake = resolve));
    };
    const stacked = stackBackend(faulty, instant({ sleep, concurrency: 1 }));
    const get = stacked.get('a');
    await sleeping;
    // The only slot is free while the get sleeps: this put would otherwise wait for ever.
    await stacked.put('b', Buffer.from('y'));
    wake();
    expect((await get).toString()).toBe('x');
  }, 5_000);

  it('keeps to the concurrency limit across retries', async () => {
    const faulty = new FaultyBackend(new MemoryBackend(), {
      rules: [{ op: 'any', probability: 0.3, fault: 'fail-transient' }],
      random: seededRandom(3),
    });
    const counted = new InFlightBackend(faulty);
    const stacked = stackBackend(counted, instant({ concurrency: 4 }));
    const names = Array.from({ length: 40 }, (_, i) => `n/${i}`);
    await Promise.all(names.map((name) => stacked.put(name, Buffer.from(name))));
    const read = await Promise.all(names.map((name) => stacked.get(name).then(String)));
    expect(read).toEqual(names);
    expect(counted.maxInFlight).toBe(4);
    expect(faulty.faultCount()).toBeGreaterThan(0);
  });

  it('gives the plain answer or a classified failure for any fault schedule, never wrong data', async () => {
    await fc.assert(fc.asyncProperty(scheduleArb, opsArb, fc.integer(), checkSchedule), {
      numRuns: 150,
    });
  });
});

const NAMES = ['a', 'a2', 'b/1', 'b/2'] as const;
const nameArb = fc.constantFrom(...NAMES);
const opArb = fc.oneof(
  fc.record({ kind: fc.constant('put' as const), name: nameArb, ifNotExists: fc.boolean() }),
  fc.record({ kind: fc.constant('get' as const), name: nameArb }),
  fc.record({
    kind: fc.constant('getRange' as const),
    name: nameArb,
    offset: fc.nat(24),
    length: fc.nat(24),
  }),
  fc.record({ kind: fc.constant('stat' as const), name: nameArb }),
  fc.record({ kind: fc.constant('delete' as const), name: nameArb }),
  fc.record({ kind: fc.constant('list' as const), name: fc.constantFrom('', 'a', 'b/') }),
);
type Op = typeof opArb extends fc.Arbitrary<infer T> ? T : never;
const opsArb = fc.array(opArb, { minLength: 1, maxLength: 30 });

const ruleArb: fc.Arbitrary<FaultRule> = fc
  .record({
    op: fc.constantFrom(...FAULT_OPS, 'any' as const),
    fault: fc.constantFrom('fail-transient', 'fail-io', 'no-space', 'delay' as const),
    when: fc.oneof(
      fc.record({ nth: fc.integer({ min: 1, max: 20 }) }),
      fc.record({ every: fc.integer({ min: 1, max: 4 }) }),
      fc.record({ probability: fc.double({ min: 0, max: 1, noNaN: true }) }),
    ),
  })
  .map(({ op, fault, when }) => ({ op, fault, ...when, ...(fault === 'delay' && { delayMs: 0 }) }));
const scheduleArb = fc.array(ruleArb, { maxLength: 4 });

/** Failures the fault schedule may cause; injected before the call, so they change nothing. */
const INJECTED: ReadonlySet<ErrorCode> = new Set([
  'BACKEND_TRANSIENT',
  'BACKEND_IO',
  'BACKEND_NO_SPACE',
]);

type Outcome = { ok: true; value: unknown } | { ok: false; code: ErrorCode };

async function run(backend: Backend, op: Op, data: Buffer): Promise<Outcome> {
  const call = async (): Promise<unknown> => {
    switch (op.kind) {
      case 'put':
        return backend.put(op.name, data, { ifNotExists: op.ifNotExists });
      case 'get':
        return backend.get(op.name);
      case 'getRange':
        return backend.getRange(op.name, op.offset, op.length);
      case 'stat':
        return backend.stat(op.name);
      case 'delete':
        return backend.delete(op.name);
      case 'list':
        return (await collect(backend.list(op.name))).sort((x, y) => (x.name < y.name ? -1 : 1));
    }
  };
  try {
    return { ok: true, value: await call() };
  } catch (error) {
    if (!isHoldfastError(error)) throw error;
    return { ok: false, code: error.code };
  }
}

/**
 * Runs `ops` through a stack over a faulty memory backend and on a plain one. Each answer of the
 * stack is the plain one's, or an injected (hence classified, write-free) failure; a delete retried
 * after a transient failure may report success for a missing object (see RetryingBackend). The
 * stores end up identical.
 */
async function checkSchedule(rules: FaultRule[], ops: Op[], seed: number): Promise<void> {
  const plain = new MemoryBackend('plain');
  const memory = new MemoryBackend('faulty');
  const faulty = new FaultyBackend(memory, { rules, random: seededRandom(seed) });
  const stacked = stackBackend(
    faulty,
    instant({ random: seededRandom(seed + 1), retry: { maxAttempts: 3 }, concurrency: 2 }),
  );
  for (const [i, op] of ops.entries()) {
    // Every put writes bytes no other put writes, so reading back proves whose they are.
    const data = Buffer.from(`value ${i} `.repeat((i % 3) + 1));
    const transientBefore = faulty.faultCount('fail-transient');
    const got = await run(stacked, op, data);
    if (!got.ok && INJECTED.has(got.code)) continue;
    const want = await run(plain, op, data);
    const retried = faulty.faultCount('fail-transient') > transientBefore;
    if (op.kind === 'delete' && retried && got.ok && !want.ok) {
      expect(want.code).toBe('BACKEND_NOT_FOUND');
      continue;
    }
    expect(got).toEqual(want);
  }
  expect(memory.snapshot()).toEqual(plain.snapshot());
}
