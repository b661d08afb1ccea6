import {
  describeError,
  HoldfastError,
  isHoldfastError,
  throwIfAborted,
  type Clock,
} from '../core/index.js';
import type {
  Backend,
  BackendCapabilities,
  ObjectInfo,
  OpOptions,
  PutOptions,
  RetentionOptions,
} from './backend.js';
import { requireRetention } from './retention.js';
import type { FaultOp } from './faulty-backend.js';

/**
 * Waits `ms` milliseconds. It SHOULD end early when `signal` aborts; the callers in this folder
 * do not rely on it and stop waiting on an abort themselves.
 */
export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

/** How persistent a {@link RetryingBackend} is. Every field has a default. */
export interface RetryPolicy {
  /** Attempts per operation, the first one included; 1 turns retrying off. Default 8. */
  readonly maxAttempts?: number;
  /** Upper bound of the first backoff; it doubles with each retry. Default 200 ms. */
  readonly baseDelayMs?: number;
  /** Upper bound of any one backoff. Default 30 s. */
  readonly maxDelayMs?: number;
  /**
   * No retry is started (nor slept towards) once it would begin later than this after the
   * operation's first attempt started (for `list`, after its first failure, so a slow consumer
   * does not use up the budget). Default 5 minutes.
   */
  readonly maxElapsedMs?: number;
}

/** The defaults of {@link RetryPolicy}: about 13 s of backoff on average before giving up. */
export const DEFAULT_RETRY_POLICY: Readonly<Required<RetryPolicy>> = Object.freeze({
  maxAttempts: 8,
  baseDelayMs: 200,
  maxDelayMs: 30_000,
  maxElapsedMs: 5 * 60_000,
});

/** One retry about to happen, for counters and logs. */
export interface RetryEvent {
  readonly op: FaultOp;
  /** The object name, or the prefix of a listing. */
  readonly name: string;
  /** The attempt that failed, counted from 1. */
  readonly attempt: number;
  /** The backoff before the next attempt. */
  readonly delayMs: number;
  readonly error: HoldfastError;
}

/** Options of {@link RetryingBackend}: the policy plus the injected randomness and time. */
export interface RetryingBackendOptions extends RetryPolicy {
  /** Uniform numbers in [0, 1) for the jitter; seed it in tests. */
  readonly random: () => number;
  /** How backoffs wait; {@link timerSleep} in production, a recorder in tests. */
  readonly sleep: Sleep;
  /** Measures the elapsed time for {@link RetryPolicy.maxElapsedMs}. */
  readonly clock: Clock;
  /** Called before each backoff. */
  readonly onRetry?: (event: RetryEvent) => void;
}

/**
 * A wrapper that retries transient failures (BACKEND_TRANSIENT, and nothing else) of any backend,
 * with exponential backoff and full jitter: before retry `n` it waits a uniform random time in
 * `[0, min(maxDelayMs, baseDelayMs * 2^(n-1)))`. When attempts or time run out it fails with
 * BACKEND_TRANSIENT, the last failure as `cause`. An abort fails at once with CANCELLED, during
 * a backoff too, and starts no further attempt.
 *
 * A transient failure does not say whether the request reached the store, so a retry can meet
 * the effect of the attempt before it:
 * - `put` with `ifNotExists` answered BACKEND_EXISTS on a retry reads the object back: if it
 *   holds exactly the bytes being written, the earlier attempt stored them and the put succeeds.
 *   (Another writer storing the very same bytes looks the same — harmless for content-addressed
 *   objects; objects used for mutual exclusion, such as locks, must differ per writer.)
 * - `delete` answered BACKEND_NOT_FOUND on a retry succeeds: the earlier attempt deleted it, or
 *   someone else did; either way the object is gone, which is what the caller asked for.
 * - `list` restarts from the beginning after a failure and skips names it already yielded, so
 *   each object is still reported once. This keeps one `Set` entry per listed name, the same
 *   order of memory as the callers that collect a listing.
 *
 * `getRange` returning fewer bytes than asked is an answer, not a failure: it is passed on so
 * truncation stays detectable.
 */
export class RetryingBackend implements Backend {
  /** Those of the wrapped backend. */
  readonly capabilities: BackendCapabilities;
  /** That of the wrapped backend. */
  readonly location: string;

  readonly #inner: Backend;
  readonly #policy: Readonly<Required<RetryPolicy>>;
  readonly #options: RetryingBackendOptions;

  /** Wraps `inner`; throws USAGE_INVALID for a policy that cannot work. */
  constructor(inner: Backend, options: RetryingBackendOptions) {
    this.#policy = validatePolicy(options);
    this.#inner = inner;
    this.#options = options;
    this.capabilities = inner.capabilities;
    this.location = inner.location;
  }

  /** Puts with retries; see the class comment for `ifNotExists`. */
  async put(name: string, data: Uint8Array, options: PutOptions = {}): Promise<void> {
    await this.#retry('put', name, options.signal, async (attempt) => {
      try {
        await this.#inner.put(name, data, options);
      } catch (error) {
        const ambiguous = attempt > 1 && options.ifNotExists === true;
        if (ambiguous && isHoldfastError(error, 'BACKEND_EXISTS')) {
          if (await this.#holds(name, data, options.signal)) return;
        }
        throw error;
      }
    });
  }

  /** Gets with retries. */
  async get(name: string, options: OpOptions = {}): Promise<Buffer> {
    return this.#retry('get', name, options.signal, () => this.#inner.get(name, options));
  }

  /** Gets a range with retries; a short result is returned as it is. */
  async getRange(
    name: string,
    offset: number,
    length: number,
    options: OpOptions = {},
  ): Promise<Buffer> {
    return this.#retry('getRange', name, options.signal, () =>
      this.#inner.getRange(name, offset, length, options),
    );
  }

  /** Lists with retries: a failed listing restarts and skips the names already yielded. */
  async *list(prefix: string, options: OpOptions = {}): AsyncGenerator<ObjectInfo> {
    const yielded = new Set<string>();
    let firstFailure: number | undefined;
    for (let attempt = 1; ; attempt += 1) {
      throwIfAborted(options.signal);
      const iterator = this.#inner.list(prefix, options)[Symbol.asyncIterator]();
      let failure: { error: unknown } | undefined;
      try {
        for (;;) {
          let step: IteratorResult<ObjectInfo>;
          try {
            step = await iterator.next();
          } catch (error) {
            failure = { error };
            break;
          }
          if (step.done === true) return;
          if (yielded.has(step.value.name)) continue;
          yielded.add(step.value.name);
          yield step.value;
        }
      } finally {
        // A listing that threw is finished; one the consumer left early must be closed.
        if (failure === undefined) await iterator.return?.();
      }
      firstFailure ??= this.#options.clock.now();
      await this.#backoff('list', prefix, failure.error, attempt, firstFailure, options.signal);
    }
  }

  /** Stats with retries. */
  async stat(name: string, options: OpOptions = {}): Promise<ObjectInfo> {
    return this.#retry('stat', name, options.signal, () => this.#inner.stat(name, options));
  }

  /** Deletes with retries; see the class comment for BACKEND_NOT_FOUND on a retry. */
  async delete(name: string, options: OpOptions = {}): Promise<void> {
    await this.#retry('delete', name, options.signal, async (attempt) => {
      try {
        await this.#inner.delete(name, options);
      } catch (error) {
        if (attempt > 1 && isHoldfastError(error, 'BACKEND_NOT_FOUND')) return;
        throw error;
      }
    });
  }

  /** Extends a retention lock with retries (setting the same lock again is harmless). */
  async extendRetention(name: string, until: number, options: RetentionOptions): Promise<void> {
    const inner = requireRetention(this.#inner);
    await this.#retry('put', name, options.signal, () => inner(name, until, options));
  }

  /** Closes the wrapped backend. */
  async close(): Promise<void> {
    return this.#inner.close();
  }

  /** Runs `call` until it succeeds, fails for good, or the policy gives up. */
  async #retry<T>(
    op: FaultOp,
    name: string,
    signal: AbortSignal | undefined,
    call: (attempt: number) => Promise<T>,
  ): Promise<T> {
    const started = this.#options.clock.now();
    for (let attempt = 1; ; attempt += 1) {
      throwIfAborted(signal);
      try {
        return await call(attempt);
      } catch (error) {
        await this.#backoff(op, name, error, attempt, started, signal);
      }
    }
  }

  /** Rethrows `error` unless it is worth another attempt; otherwise waits the backoff. */
  async #backoff(
    op: FaultOp,
    name: string,
    error: unknown,
    attempt: number,
    started: number,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    if (!isHoldfastError(error, 'BACKEND_TRANSIENT')) throw error;
    // A transient failure caused by the caller's own abort is a cancellation.
    throwIfAborted(signal);
    const { maxAttempts, baseDelayMs, maxDelayMs, maxElapsedMs } = this.#policy;
    const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
    const delayMs = Math.floor(this.#options.random() * ceiling);
    const elapsed = this.#options.clock.now() - started;
    if (attempt >= maxAttempts || elapsed + delayMs > maxElapsedMs) {
      throw new HoldfastError(
        'BACKEND_TRANSIENT',
        `${op} "${name}" in ${this.location} still failed after ${attempt} attempts over ${elapsed} ms (${describeError(error)}). Check that the storage is reachable and not overloaded, then try again.`,
        { cause: error },
      );
    }
    this.#options.onRetry?.({ op, name, attempt, delayMs, error });
    await sleepUnlessAborted(this.#options.sleep, delayMs, signal);
  }

  /** True when `name` holds exactly `data` (retried itself); false when it is gone. */
  async #holds(name: string, data: Uint8Array, signal: AbortSignal | undefined): Promise<boolean> {
    try {
      const stored = await this.get(name, signal === undefined ? {} : { signal });
      return stored.equals(data);
    } catch (error) {
      // Deleted since it answered "exists": someone else's object came and went; keep EXISTS.
      if (isHoldfastError(error, 'BACKEND_NOT_FOUND')) return false;
      throw error;
    }
  }
}

/** A {@link Sleep} on the global timer; an abort ends it with CANCELLED. */
export function timerSleep(ms: number, signal?: AbortSignal): Promise<void> {
  throwIfAborted(signal);
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(cancelled(signal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Waits with `sleep`, but fails with CANCELLED the moment `signal` aborts, whatever `sleep` does. */
function sleepUnlessAborted(sleep: Sleep, ms: number, signal?: AbortSignal): Promise<void> {
  throwIfAborted(signal);
  if (signal === undefined) return sleep(ms);
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(cancelled(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    sleep(ms, signal)
      .then(resolve, reject)
      .finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function cancelled(signal: AbortSignal | undefined): HoldfastError {
  return new HoldfastError('CANCELLED', 'The operation was cancelled.', { cause: signal?.reason });
}

function validatePolicy(policy: RetryPolicy): Readonly<Required<RetryPolicy>> {
  const merged: Required<RetryPolicy> = {
    maxAttempts: policy.maxAttempts ?? DEFAULT_RETRY_POLICY.maxAttempts,
    baseDelayMs: policy.baseDelayMs ?? DEFAULT_RETRY_POLICY.baseDelayMs,
    maxDelayMs: policy.maxDelayMs ?? DEFAULT_RETRY_POLICY.maxDelayMs,
    maxElapsedMs: policy.maxElapsedMs ?? DEFAULT_RETRY_POLICY.maxElapsedMs,
  };
  const fail = (problem: string): never => {
    throw new HoldfastError('USAGE_INVALID', `Retry policy: ${problem}.`);
  };
  if (!(Number.isSafeInteger(merged.maxAttempts) && merged.maxAttempts >= 1)) {
    fail('maxAttempts must be an integer >= 1');
  }
  for (const key of ['baseDelayMs', 'maxDelayMs', 'maxElapsedMs'] as const) {
    if (!(merged[key] >= 0 && Number.isFinite(merged[key]))) fail(`${key} must be a number >= 0`);
  }
  return Object.freeze(merged);
}
