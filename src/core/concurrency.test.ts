import { describe, expect, it } from 'vitest';
import { forEachLimit, Semaphore } from './concurrency.js';

const tick = (ms = 1): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('forEachLimit', () => {
  it('starts items in order and never has more than the limit in flight', async () => {
    const started: number[] = [];
    let inFlight = 0;
    let most = 0;
    await forEachLimit([...Array(40).keys()], 3, async (i) => {
      started.push(i);
      inFlight += 1;
      most = Math.max(most, inFlight);
      await tick(i % 4);
      inFlight -= 1;
    });
    expect(started).toEqual([...Array(40).keys()]);
    expect(most).toBe(3);
  });

  it('rejects with the first error only after the tasks already started have settled', async () => {
    const settled: number[] = [];
    const started: number[] = [];
    const run = forEachLimit([0, 1, 2, 3, 4, 5, 6, 7], 3, async (i) => {
      started.push(i);
      if (i === 1) throw new Error('item 1 failed');
      await tick(5);
      settled.push(i);
    });
    await expect(run).rejects.toThrow('item 1 failed');
    // Items 0 and 2 were running when 1 failed: they finished; nothing new started after it.
    expect(settled.sort()).toEqual([0, 2]);
    expect(started).toEqual([0, 1, 2]);
  });

  it('asks an async iterable for one item at a time, even with several runners waiting', async () => {
    let asking = 0;
    let overlapping = false;
    let n = 0;
    const iterable: AsyncIterable<number> = {
      [Symbol.asyncIterator]: () => ({
        async next(): Promise<IteratorResult<number>> {
          asking += 1;
          if (asking > 1) overlapping = true;
          await tick();
          asking -= 1;
          n += 1;
          return n <= 10 ? { done: false, value: n } : { done: true, value: undefined };
        },
      }),
    };
    const seen: number[] = [];
    await forEachLimit(iterable, 4, async (i) => {
      seen.push(i);
      await tick();
    });
    expect(overlapping).toBe(false);
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('passes an error of the iterator itself to the caller', async () => {
    async function* failing(): AsyncGenerator<number> {
      yield 1;
      throw new Error('listing broke');
    }
    await expect(forEachLimit(failing(), 2, async () => tick())).rejects.toThrow('listing broke');
  });

  it('refuses a limit below one', async () => {
    await expect(forEachLimit([1], 0, async () => undefined)).rejects.toThrow(RangeError);
  });
});

describe('Semaphore', () => {
  it('wakes waiters in the order they came', async () => {
    const semaphore = new Semaphore(1);
    const order: string[] = [];
    await semaphore.acquire();
    const a = semaphore.acquire().then(() => order.push('a'));
    const b = semaphore.acquire().then(() => order.push('b'));
    semaphore.release();
    await a;
    semaphore.release();
    await b;
    expect(order).toEqual(['a', 'b']);
  });
});
