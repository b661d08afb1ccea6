import { isHoldfastError, type ErrorCode } from '../core/index.js';
import type {
  Backend,
  BackendCapabilities,
  ObjectInfo,
  OpOptions,
  PutOptions,
  RetentionOptions,
} from './backend.js';
import { requireRetention } from './retention.js';
import { FAULT_OPS, type FaultOp } from './faulty-backend.js';

/**
 * Plain counters of the traffic through a {@link CountingBackend}, for a metrics layer or a
 * benchmark ("requests per GiB stored") to read. Mutated in place; never reset by the wrapper.
 */
export interface BackendCounters {
  /** Requests started, by operation; a listing counts once however many objects it yields. */
  readonly requests: Record<FaultOp, number>;
  /** Failed requests, by code (a failure that is not a HoldfastError counts as INTERNAL). */
  readonly failures: Partial<Record<ErrorCode, number>>;
  /** Bytes handed to successful puts. */
  bytesWritten: number;
  /** Bytes returned by successful gets and range reads. */
  bytesRead: number;
  /** Retries made; counted by the {@link RetryingBackend} of a stack, see `stackBackend`. */
  retries: number;
}

/** A fresh set of counters, all zero. */
export function newBackendCounters(): BackendCounters {
  return {
    requests: Object.fromEntries(FAULT_OPS.map((op) => [op, 0])) as Record<FaultOp, number>,
    failures: {},
    bytesWritten: 0,
    bytesRead: 0,
    retries: 0,
  };
}

/**
 * A wrapper that counts requests, failures and bytes into a {@link BackendCounters} record and
 * changes nothing else. Inside a retrying wrapper it sees every attempt.
 */
export class CountingBackend implements Backend {
  /** Those of the wrapped backend. */
  readonly capabilities: BackendCapabilities;
  /** That of the wrapped backend. */
  readonly location: string;
  /** The live counters (the record passed in, or a fresh one). */
  readonly counters: BackendCounters;

  readonly #inner: Backend;

  /** Wraps `inner`, counting into `counters`. */
  constructor(inner: Backend, counters: BackendCounters = newBackendCounters()) {
    this.#inner = inner;
    this.counters = counters;
    this.capabilities = inner.capabilities;
    this.location = inner.location;
  }

  /** Counts a put and, when it succeeds, its bytes. */
  async put(name: string, data: Uint8Array, options?: PutOptions): Promise<void> {
    await this.#count('put', () => this.#inner.put(name, data, options));
    this.counters.bytesWritten += data.length;
  }

  /** Counts a get and the bytes it returns. */
  async get(name: string, options?: OpOptions): Promise<Buffer> {
    const data = await this.#count('get', () => this.#inner.get(name, options));
    this.counters.bytesRead += data.length;
    return data;
  }

  /** Counts a range read and the bytes it returns. */
  async getRange(
    name: string,
    offset: number,
    length: number,
    options?: OpOptions,
  ): Promise<Buffer> {
    const data = await this.#count('getRange', () =>
      this.#inner.getRange(name, offset, length, options),
    );
    this.counters.bytesRead += data.length;
    return data;
  }

  /** Counts a listing once, and its failure if it fails part-way. */
  async *list(prefix: string, options?: OpOptions): AsyncGenerator<ObjectInfo> {
    this.counters.requests.list += 1;
    try {
      yield* this.#inner.list(prefix, options);
    } catch (error) {
      this.#fail(error);
      throw error;
    }
  }

  /** Counts a stat. */
  async stat(name: string, options?: OpOptions): Promise<ObjectInfo> {
    return this.#count('stat', () => this.#inner.stat(name, options));
  }

  /** Counts a delete. */
  async delete(name: string, options?: OpOptions): Promise<void> {
    return this.#count('delete', () => this.#inner.delete(name, options));
  }

  /** Counts a retention lock as a put (it writes the object's metadata). */
  async extendRetention(name: string, until: number, options: RetentionOptions): Promise<void> {
    const inner = requireRetention(this.#inner);
    return this.#count('put', () => inner(name, until, options));
  }

  /** Closes the wrapped backend. */
  async close(): Promise<void> {
    return this.#inner.close();
  }

  async #count<T>(op: FaultOp, call: () => Promise<T>): Promise<T> {
    this.counters.requests[op] += 1;
    try {
      return await call();
    } catch (error) {
      this.#fail(error);
      throw error;
    }
  }

  #fail(error: unknown): void {
    const code: ErrorCode = isHoldfastError(error) ? error.code : 'INTERNAL';
    this.counters.failures[code] = (this.counters.failures[code] ?? 0) + 1;
  }
}
