/** A counting semaphore: bounds how many async tasks run at once. */
export class Semaphore {
  private available: number;
  private readonly waiters: Array<() => void> = [];

  constructor(permits: number) {
    if (!Number.isInteger(permits) || permits < 1) throw new RangeError('permits must be >= 1');
    this.available = permits;
  }

  /** Waits for a permit. Pair every acquire with one release. */
  async acquire(): Promise<void> {
    if (this.available > 0) {
      this.available -= 1;
      return;
    }
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  /** Returns a permit, waking the oldest waiter. */
  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.available += 1;
  }

  /** Runs `task` holding a permit. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await task();
    } finally {
      this.release();
    }
  }
}

/**
 * Runs `fn` over `items` with at most `limit` in flight; rejects with the first error after
 * letting the tasks already started settle. Items start in order: `limit` runners take the
 * next item as each finishes its last. A synchronous iterable is read without awaiting
 * between items, as a backup walks tens of thousands of directory entries through here.
 */
export async function forEachLimit<T>(
  items: Iterable<T> | AsyncIterable<T>,
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError('limit must be >= 1');
  const next = Symbol.asyncIterator in items ? oneAtATime(items) : syncNext(items);
  let failure: { error: unknown } | undefined;
  const runner = async (): Promise<void> => {
    while (failure === undefined) {
      let item: IteratorResult<T>;
      try {
        const pending = next();
        item = pending instanceof Promise ? await pending : pending;
        if (item.done === true) return;
        await fn(item.value);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  const runners: Array<Promise<void>> = [];
  for (let i = 0; i < limit; i += 1) runners.push(runner());
  await Promise.all(runners);
  if (failure) throw failure.error;
}

function syncNext<T>(items: Iterable<T>): () => IteratorResult<T> {
  const iterator = items[Symbol.iterator]();
  return () => iterator.next();
}

/** Runners ask an async iterator for items one call at a time, as not every iterator queues calls. */
function oneAtATime<T>(items: AsyncIterable<T>): () => Promise<IteratorResult<T>> {
  const iterator = items[Symbol.asyncIterator]();
  let previous: Promise<unknown> = Promise.resolve();
  return () => {
    const result = previous.then(() => iterator.next());
    previous = result.catch(() => undefined);
    return result;
  };
}

/** Collects an async iterable into an array. */
export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}
