/** Test helpers: a memory backend behind random transient faults, used through the wrappers. */
import { ManualClock } from '../core/index.js';
import { seededRandom } from './backend-conformance.testkit.js';
import { stackBackend, type StackedBackend } from './backend-stack.js';
import { FaultyBackend } from './faulty-backend.js';
import { MemoryBackend } from './memory-backend.js';
import type { RetryPolicy } from './retrying-backend.js';

/** The layers of {@link faultyMemoryStack}, so tests can look at each. */
export interface FaultyMemoryStack {
  /** Where the bytes end up. */
  readonly memory: MemoryBackend;
  /** `memory` failing a share of all calls with BACKEND_TRANSIENT; use it to go without retries. */
  readonly faulty: FaultyBackend;
  /** `faulty` through {@link stackBackend}, with instant backoffs. */
  readonly backend: StackedBackend;
}

/** Options of {@link faultyMemoryStack}. */
export interface FaultyMemoryStackOptions {
  /** Share of calls (of every operation) that fail with BACKEND_TRANSIENT, 0..1. */
  readonly failureRate: number;
  /** Seeds the faults and the backoff jitter, so a failure reproduces. */
  readonly seed: number;
  readonly retry?: RetryPolicy;
  readonly concurrency?: number;
}

/**
 * A fresh memory backend behind a {@link FaultyBackend} that fails `failureRate` of all calls as
 * transient, wrapped by {@link stackBackend} with backoffs that do not wait and a clock that
 * does not move — a flaky remote store, at memory speed.
 */
export function faultyMemoryStack(options: FaultyMemoryStackOptions): FaultyMemoryStack {
  const memory = new MemoryBackend('flaky');
  const faulty = new FaultyBackend(memory, {
    rules: [{ op: 'any', probability: options.failureRate, fault: 'fail-transient' }],
    random: seededRandom(options.seed),
  });
  const backend = stackBackend(faulty, {
    random: seededRandom(options.seed + 1),
    sleep: async () => {},
    clock: new ManualClock(0),
    ...(options.retry !== undefined && { retry: options.retry }),
    ...(options.concurrency !== undefined && { concurrency: options.concurrency }),
  });
  return { memory, faulty, backend };
}
