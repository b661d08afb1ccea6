import { HoldfastError, isHoldfastError, Semaphore, throwIfAborted } from '../core/index.js';
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

/** Options of {@link LimitedBackend}. */
export interface LimitedBackendOptions {
  /** At most this many requests in flight at once (an integer >= 1). */
  readonly concurrency: number;
  /**
   * How long one request may take once it has a slot; none when omitted. Pick it above the time
   * the largest object takes to upload at the slowest rate that is still acceptable.
   */
  readonly timeoutMs?: number;
}

/**
 * A wrapper that bounds how many requests run at once against one backend, and how long each may
 * take. A request waits for a slot first (an abort ends the wait with CANCELLED); its time limit
 * starts once it has one.
 *
 * A request over its time limit is aborted through its signal and fails with BACKEND_TRANSIENT,
 * so a {@link RetryingBackend} outside retries it; an abort by the caller stays CANCELLED. The
 * wrapper then waits for the wrapped backend to give up, as the {@link Backend} contract requires
 * it to on an abort, instead of abandoning it: a put that timed out can then never land after its
 * own retry. A request that finishes despite the abort keeps its result.
 *
 * A listing holds a slot only while it fetches the next object, never while its consumer works
 * on one, so a slow consumer (or one that makes other requests while listing) cannot starve or
 * deadlock the others. The time limit applies to each fetch; one that runs over ends the listing.
 */
export class LimitedBackend implements Backend {
  /** Those of the wrapped backend. */
  readonly capabilities: BackendCapabilities;
  /** That of the wrapped backend. */
  readonly location: string;

  readonly #inner: Backend;
  readonly #slots: Semaphore;
  readonly #timeoutMs: number | undefined;

  /** Wraps `inner`; throws USAGE_INVALID for a limit that cannot work. */
  constructor(inner: Backend, options: LimitedBackendOptions) {
    if (!(Number.isSafeInteger(options.concurrency) && options.concurrency >= 1)) {
      throw new HoldfastError('USAGE_INVALID', 'Backend concurrency must be an integer >= 1.');
    }
    const { timeoutMs } = options;
    if (timeoutMs !== undefined && !(timeoutMs > 0 && Number.isFinite(timeoutMs))) {
      throw new HoldfastError('USAGE_INVALID', 'Backend request timeout must be a number > 0.');
    }
    this.#inner = inner;
    this.#slots = new Semaphore(options.concurrency);
    this.#timeoutMs = timeoutMs;
    this.capabilities = inner.capabilities;
    this.location = inner.location;
  }

  /** Puts within the limits. */
  async put(name: string, data: Uint8Array, options: PutOptions = {}): Promise<void> {
    return this.#request('put', name, options.signal, (signal) =>
      this.#inner.put(name, data, { ...options, signal }),
    );
  }

  /** Gets within the limits. */
  async get(name: string, options: OpOptions = {}): Promise<Buffer> {
    return this.#request('get', name, options.signal, (signal) =>
      this.#inner.get(name, { ...options, signal }),
    );
  }

  /** Gets a range within the limits. */
  async getRange(
    name: string,
    offset: number,
    length: number,
    options: OpOptions = {},
  ): Promise<Buffer> {
    return this.#request('getRange', name, options.signal, (signal) =>
      this.#inner.getRange(name, offset, length, { ...options, signal }),
    );
  }

  /** Lists, holding a slot (and a time limit) only while fetching each next object. */
  async *list(prefix: string, options: OpOptions = {}): AsyncGenerator<ObjectInfo> {
    throwIfAborted(options.signal);
    // One controller for the whole listing: a fetch that times out aborts it, and it is over.
    const listing = new AbortController();
    const unlink = linkAbort(options.signal, listing);
    const iterator = this.#inner.list(prefix, { ...options, signal: listing.signal });
    const steps = iterator[Symbol.asyncIterator]();
    try {
      for (;;) {
        await this.#acquire(options.signal);
        let step: IteratorResult<ObjectInfo>;
        try {
          step = await this.#timed('list', prefix, options.signal, listing, () => steps.next());
        } finally {
          this.#slots.release();
        }
        if (step.done === true) return;
        yield step.value;
      }
    } finally {
      unlink();
      await steps.return?.();
    }
  }

  /** Stats within the limits. */
  async stat(name: string, options: OpOptions = {}): Promise<ObjectInfo> {
    return this.#request('stat', name, options.signal, (signal) =>
      this.#inner.stat(name, { ...options, signal }),
    );
  }

  /** Deletes within the limits. */
  async delete(name: string, options: OpOptions = {}): Promise<void> {
    return this.#request('delete', name, options.signal, (signal) =>
      this.#inner.delete(name, { ...options, signal }),
    );
  }

  /** Extends a retention lock within the limits. */
  async extendRetention(name: string, until: number, options: RetentionOptions): Promise<void> {
    const inner = requireRetention(this.#inner);
    return this.#request('put', name, options.signal, (signal) =>
      inner(name, until, { ...options, signal }),
    );
  }

  /** Closes the wrapped backend. */
  async close(): Promise<void> {
    return this.#inner.close();
  }

  /** Runs one request in a slot, under its own signal: the caller's plus the time limit. */
  async #request<T>(
    op: FaultOp,
    name: string,
    signal: AbortSignal | undefined,
    call: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    await this.#acquire(signal);
    const request = new AbortController();
    const unlink = linkAbort(signal, request);
    try {
      return await this.#timed(op, name, signal, request, () => call(request.signal));
    } finally {
      unlink();
      this.#slots.release();
    }
  }

  /**
   * Runs `call`, aborting `controller` when the time limit passes; the failure that abort causes
   * becomes BACKEND_TRANSIENT. Answers that are not about the abort (NOT_FOUND, EXISTS…) and
   * the caller's own abort keep their code.
   */
  async #timed<T>(
    op: FaultOp,
    name: string,
    callerSignal: AbortSignal | undefined,
    controller: AbortController,
    call: () => Promise<T>,
  ): Promise<T> {
    const timeoutMs = this.#timeoutMs;
    if (timeoutMs === undefined) return call();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new Error(`timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    try {
      return await call();
    } catch (error) {
      const causedByTimeout = !isHoldfastError(error) || error.code === 'CANCELLED';
      if (timedOut && callerSignal?.aborted !== true && causedByTimeout) {
        throw new HoldfastError(
          'BACKEND_TRANSIENT',
          `${op} "${name}" in ${this.location} took longer than ${timeoutMs} ms and was aborted. If the storage is slow rather than unreachable, raise the request timeout.`,
          { cause: error },
        );
      }
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Waits for a slot; an abort ends the wait with CANCELLED and passes the slot on. */
  async #acquire(signal: AbortSignal | undefined): Promise<void> {
    throwIfAborted(signal);
    if (signal === undefined) return this.#slots.acquire();
    const acquired = this.#slots.acquire();
    let onAbort = (): void => {};
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(cancelled(signal));
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      await Promise.race([acquired, aborted]);
    } catch (error) {
      // The slot still comes to us later; hand it straight on.
      void acquired.then(() => this.#slots.release());
      throw error;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }
}

/**
 * Aborts `controller` when `signal` aborts (at once if it already has), with its reason; returns
 * the function that stops listening, so long-lived signals do not collect listeners.
 */
function linkAbort(signal: AbortSignal | undefined, controller: AbortController): () => void {
  if (signal === undefined) return () => {};
  if (signal.aborted) {
    controller.abort(signal.reason);
    return () => {};
  }
  const onAbort = (): void => controller.abort(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  return () => signal.removeEventListener('abort', onAbort);
}

function cancelled(signal: AbortSignal): HoldfastError {
  return new HoldfastError('CANCELLED', 'The operation was cancelled.', { cause: signal.reason });
}
