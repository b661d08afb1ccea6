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
 * letting the tasks already started settle.
 */
export async function forEachLimit<T>(
  items: Iterable<T> | AsyncIterable<T>,
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  const semaphore = new Semaphore(limit);
  const running = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  for await (const item of items) {
    if (failure) break;
    await semaphore.acquire();
    if (failure) {
      semaphore.release();
      break;
    }
    const task = fn(item)
      .catch((error: unknown) => {
        failure ??= { error };
      })
      .finally(() => {
        semaphore.release();
        running.delete(task);
      });
    running.add(task);
  }
  await Promise.all(running);
  if (failure) throw failure.error;
}

/** Collects an async iterable into an array. */
export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}
