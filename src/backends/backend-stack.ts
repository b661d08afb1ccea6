import type { Clock } from '../core/index.js';
import type { Backend } from './backend.js';
import { CountingBackend, newBackendCounters, type BackendCounters } from './counting-backend.js';
import { LimitedBackend } from './limited-backend.js';
import { RetryingBackend, type RetryPolicy, type Sleep } from './retrying-backend.js';

/** Requests in flight per backend when {@link BackendStackOptions.concurrency} is not given. */
export const DEFAULT_BACKEND_CONCURRENCY = 8;

/** Options of {@link stackBackend}. Randomness and time are always passed in. */
export interface BackendStackOptions {
  /** Uniform numbers in [0, 1) for the backoff jitter (`Math.random` in production). */
  readonly random: () => number;
  /** How backoffs wait (`timerSleep` in production, a no-op or a recorder in tests). */
  readonly sleep: Sleep;
  /** Measures how long an operation has been retried. */
  readonly clock: Clock;
  /** How persistent retries are; {@link DEFAULT_RETRY_POLICY} fills what is left out. */
  readonly retry?: RetryPolicy;
  /** Requests in flight at once; default {@link DEFAULT_BACKEND_CONCURRENCY}. */
  readonly concurrency?: number;
  /** Time limit of one request once it runs; none when omitted. */
  readonly timeoutMs?: number;
}

/** A backend wrapped by {@link stackBackend}, with the counters of its traffic. */
export interface StackedBackend extends Backend {
  /** Every attempt (retries included) as the wrapped backend saw it, and the retries made. */
  readonly counters: BackendCounters;
}

/**
 * Wraps a backend in the layers every remote backend is used through, outermost first:
 * `RetryingBackend` → `CountingBackend` → `LimitedBackend` → `inner`.
 *
 * Retrying is outside the limit so that a request backing off holds no slot while it sleeps, and
 * each attempt gets a fresh time limit once it has a slot; a timed-out attempt comes back as
 * BACKEND_TRANSIENT and is retried. Counting sits between them, so it sees every attempt with
 * its final classification (timeouts included). Capabilities and location are those of `inner`.
 */
export function stackBackend(inner: Backend, options: BackendStackOptions): StackedBackend {
  const counters = newBackendCounters();
  const limited = new LimitedBackend(inner, {
    concurrency: options.concurrency ?? DEFAULT_BACKEND_CONCURRENCY,
    ...(options.timeoutMs !== undefined && { timeoutMs: options.timeoutMs }),
  });
  const retrying = new RetryingBackend(new CountingBackend(limited, counters), {
    ...options.retry,
    random: options.random,
    sleep: options.sleep,
    clock: options.clock,
    onRetry: () => {
      counters.retries += 1;
    },
  });
  return Object.assign(retrying, { counters });
}
