import { afterEach, describe, expect, it, vi } from 'vitest';
import { collect } from '../core/index.js';
import { failureCode, seededRandom } from './backend-conformance.testkit.js';
import { FaultyBackend, type FaultRule } from './faulty-backend.js';
import { MemoryBackend } from './memory-backend.js';

function setup(rules: readonly FaultRule[], random?: () => number) {
  const inner = new MemoryBackend('inner');
  const faulty = new FaultyBackend(inner, random === undefined ? { rules } : { rules, random });
  return { inner, faulty };
}

const DATA = Buffer.from('0123456789');

describe('FaultyBackend', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('fails only the nth matching call with BACKEND_TRANSIENT and writes nothing', async () => {
    const { inner, faulty } = setup([{ op: 'put', nth: 2, fault: 'fail-transient' }]);
    await faulty.put('a', DATA);
    expect(await failureCode(faulty.put('b', DATA))).toBe('BACKEND_TRANSIENT');
    await faulty.put('c', DATA);
    expect([...inner.objects().keys()].sort()).toEqual(['a', 'c']);
    expect(faulty.callCount('put')).toBe(3);
    expect(faulty.faultCount('fail-transient')).toBe(1);
    expect(faulty.faultCount()).toBe(1);
  });

  it('fails every second get with BACKEND_IO', async () => {
    const { inner, faulty } = setup([{ op: 'get', every: 2, fault: 'fail-io' }]);
    await inner.put('a', DATA);
    const outcomes: string[] = [];
    for (let i = 0; i < 4; i++) {
      outcomes.push(
        await faulty.get('a').then(
          () => 'ok',
          (e: { code: string }) => e.code,
        ),
      );
    }
    expect(outcomes).toEqual(['ok', 'BACKEND_IO', 'ok', 'BACKEND_IO']);
  });

  it('applies a rule only to names with its prefix, counting only those calls', async () => {
    const { inner, faulty } = setup([
      { op: 'put', namePrefix: 'packs/', nth: 2, fault: 'no-space' },
    ]);
    await faulty.put('packs/p1', DATA);
    await faulty.put('index/i1', DATA);
    expect(await failureCode(faulty.put('packs/p2', DATA))).toBe('BACKEND_NO_SPACE');
    expect([...inner.objects().keys()].sort()).toEqual(['index/i1', 'packs/p1']);
  });

  it("counts calls of every operation for op 'any'", async () => {
    const { inner, faulty } = setup([{ op: 'any', nth: 3, fault: 'fail-io' }]);
    await inner.put('a', DATA);
    await faulty.stat('a');
    await faulty.getRange('a', 0, 2);
    expect(await failureCode(faulty.delete('a'))).toBe('BACKEND_IO');
    expect(inner.objects().has('a')).toBe(true);
    await faulty.delete('a');
    expect(faulty.callCount('delete')).toBe(2);
    expect(faulty.callCount('any')).toBe(4);
  });

  it('fails a listing when iteration starts', async () => {
    const { inner, faulty } = setup([{ op: 'list', nth: 1, fault: 'fail-transient' }]);
    await inner.put('packs/p1', DATA);
    expect(await failureCode(collect(faulty.list('packs/')))).toBe('BACKEND_TRANSIENT');
    expect(await collect(faulty.list('packs/'))).toEqual([{ name: 'packs/p1', size: 10 }]);
    expect(faulty.callCount('list')).toBe(2);
  });

  it('draws probabilities from the injected random source only, reproducibly', async () => {
    const run = async (seed: number): Promise<string> => {
      const { faulty } = setup(
        [{ op: 'put', probability: 0.5, fault: 'fail-transient' }],
        seededRandom(seed),
      );
      let pattern = '';
      for (let i = 0; i < 64; i++) {
        pattern += await faulty.put(`o${i}`, DATA).then(
          () => '.',
          () => 'x',
        );
      }
      return pattern;
    };
    const first = await run(42);
    expect(await run(42)).toBe(first);
    expect(first).toContain('x');
    expect(first).toContain('.');
    const never = setup([{ op: 'any', probability: 0, fault: 'fail-io' }], () => 0);
    await never.faulty.put('a', DATA);
    const always = setup([{ op: 'any', probability: 1, fault: 'fail-io' }], () => 0.999);
    expect(await failureCode(always.faulty.put('a', DATA))).toBe('BACKEND_IO');
  });

  it('delays a call by delayMs', async () => {
    vi.useFakeTimers();
    const { inner, faulty } = setup([{ op: 'stat', fault: 'delay', delayMs: 100 }]);
    await inner.put('a', DATA);
    let settled = false;
    const pending = faulty.stat('a').then((info) => {
      settled = true;
      return info;
    });
    await vi.advanceTimersByTimeAsync(99);
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await pending).toEqual({ name: 'a', size: 10 });
    expect(faulty.faultCount('delay')).toBe(1);
  });

  it('ends a delay with CANCELLED on abort, before anything is written', async () => {
    vi.useFakeTimers();
    const { inner, faulty } = setup([{ op: 'put', fault: 'delay', delayMs: 1000 }]);
    const controller = new AbortController();
    const pending = faulty.put('a', DATA, { signal: controller.signal });
    await vi.advanceTimersByTimeAsync(10);
    controller.abort();
    expect(await failureCode(pending)).toBe('CANCELLED');
    expect(inner.objects().size).toBe(0);
  });

  it('truncates and corrupts what reads return, leaving the stored object intact', async () => {
    const { inner, faulty } = setup([
      { op: 'get', nth: 1, fault: 'truncate' },
      { op: 'get', nth: 2, fault: 'corrupt' },
      { op: 'getRange', fault: 'truncate' },
    ]);
    await inner.put('a', DATA);
    expect((await faulty.get('a')).toString()).toBe('01234');
    const corrupted = await faulty.get('a');
    expect(corrupted).toHaveLength(10);
    expect([...corrupted].filter((byte, i) => byte !== DATA[i])).toHaveLength(1);
    expect(corrupted[5]).toBe(DATA[5]! ^ 0xff);
    expect((await faulty.getRange('a', 2, 4)).toString()).toBe('23');
    expect(await faulty.get('a')).toEqual(DATA);
    expect(inner.objects().get('a')).toEqual(DATA);
  });

  it('stores truncated or corrupted bytes on put, like a lying disk', async () => {
    const { inner, faulty } = setup([
      { op: 'put', namePrefix: 'short', fault: 'truncate' },
      { op: 'put', namePrefix: 'flipped', fault: 'corrupt' },
    ]);
    const input = Buffer.from(DATA);
    await faulty.put('short', input);
    await faulty.put('flipped', input);
    await faulty.put('flipped-empty', new Uint8Array(0));
    expect(input).toEqual(DATA);
    expect(inner.objects().get('short')?.toString()).toBe('01234');
    const flipped = inner.objects().get('flipped');
    expect(flipped).toHaveLength(10);
    expect(flipped?.[5]).toBe(DATA[5]! ^ 0xff);
    expect(inner.objects().get('flipped')?.subarray(0, 5)).toEqual(DATA.subarray(0, 5));
    expect(faulty.faultCount('truncate')).toBe(1);
    expect(faulty.faultCount('corrupt')).toBe(2);
    expect(inner.objects().get('flipped-empty')).toHaveLength(0);
  });

  it('passes capabilities, location and close through', async () => {
    const { inner, faulty } = setup([]);
    expect(faulty.capabilities).toBe(inner.capabilities);
    expect(faulty.location).toBe('memory:inner');
    await faulty.close();
  });

  it.each<[string, FaultRule, (() => number) | undefined]>([
    [
      'a probability without a random source',
      { op: 'put', probability: 0.5, fault: 'fail-io' },
      undefined,
    ],
    ['a probability above 1', { op: 'put', probability: 2, fault: 'fail-io' }, () => 0],
    ['nth 0', { op: 'put', nth: 0, fault: 'fail-io' }, undefined],
    ['every 1.5', { op: 'put', every: 1.5, fault: 'fail-io' }, undefined],
    ['a delay without delayMs', { op: 'put', fault: 'delay' }, undefined],
    ['truncating a stat', { op: 'stat', fault: 'truncate' }, undefined],
    ['corrupting a list', { op: 'list', fault: 'corrupt' }, undefined],
  ])('rejects %s with USAGE_INVALID', (_, rule, random) => {
    expect(() => setup([rule], random)).toThrow(expect.objectContaining({ code: 'USAGE_INVALID' }));
  });
});
