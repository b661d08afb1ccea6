import { HoldfastError, throwIfAborted } from '../core/index.js';
import type { Backend, BackendCapabilities, ObjectInfo, OpOptions, PutOptions } from './backend.js';
import { assertObjectName, assertObjectPrefix, assertRange } from './object-name.js';

/**
 * A backend that keeps objects in a `Map`, with the same semantics as the durable ones: the same
 * name rules, errors and copy-on-put/copy-on-get, so stored bytes change only through `put`.
 * Meant for tests and for trying things out; everything is lost with the process.
 */
export class MemoryBackend implements Backend {
  /** Everything is atomic and immediately visible in one process. */
  readonly capabilities: BackendCapabilities = Object.freeze({
    conditionalPut: true,
    rangeReads: true,
    consistentList: true,
    objectLock: false,
  });

  /** `memory:<label>`. */
  readonly location: string;

  readonly #objects = new Map<string, Buffer>();

  /** An empty store; `label` only tells several instances apart in messages. */
  constructor(label = 'default') {
    this.location = `memory:${label}`;
  }

  /** Stores a copy of `data`. */
  async put(name: string, data: Uint8Array, options: PutOptions = {}): Promise<void> {
    assertObjectName(name);
    throwIfAborted(options.signal);
    if (options.ifNotExists === true && this.#objects.has(name)) {
      throw new HoldfastError(
        'BACKEND_EXISTS',
        `Object "${name}" already exists in ${this.location}; it was left unchanged.`,
      );
    }
    this.#objects.set(name, Buffer.from(data));
  }

  /** Returns a copy of the stored bytes. */
  async get(name: string, options: OpOptions = {}): Promise<Buffer> {
    assertObjectName(name);
    throwIfAborted(options.signal);
    return Buffer.from(this.#find(name));
  }

  /** Returns a copy of the requested bytes; short or empty past the end. */
  async getRange(
    name: string,
    offset: number,
    length: number,
    options: OpOptions = {},
  ): Promise<Buffer> {
    assertObjectName(name);
    assertRange(offset, length);
    throwIfAborted(options.signal);
    return Buffer.from(this.#find(name).subarray(offset, offset + length));
  }

  /**
   * Lists from a snapshot of the names taken when iteration starts; objects deleted meanwhile
   * are skipped, so nothing is reported that is already gone.
   */
  async *list(prefix: string, options: OpOptions = {}): AsyncGenerator<ObjectInfo> {
    assertObjectPrefix(prefix);
    throwIfAborted(options.signal);
    const names = [...this.#objects.keys()].filter((name) => name.startsWith(prefix));
    for (const name of names) {
      throwIfAborted(options.signal);
      const data = this.#objects.get(name);
      if (data !== undefined) yield { name, size: data.length };
    }
  }

  /** Size of the stored object. */
  async stat(name: string, options: OpOptions = {}): Promise<ObjectInfo> {
    assertObjectName(name);
    throwIfAborted(options.signal);
    return { name, size: this.#find(name).length };
  }

  /** Removes the object. */
  async delete(name: string, options: OpOptions = {}): Promise<void> {
    assertObjectName(name);
    throwIfAborted(options.signal);
    this.#find(name);
    this.#objects.delete(name);
  }

  /** Nothing to release; the objects stay readable through {@link MemoryBackend.objects}. */
  async close(): Promise<void> {}

  /**
   * Test-oriented: the live store. Changing a Buffer in it changes the stored object, which is how
   * tests simulate bit rot or a lost object without going through `put`.
   */
  objects(): Map<string, Buffer> {
    return this.#objects;
  }

  /** Test-oriented: a deep copy of the store, for comparing before and after an operation. */
  snapshot(): Map<string, Buffer> {
    return new Map([...this.#objects].map(([name, data]) => [name, Buffer.from(data)]));
  }

  #find(name: string): Buffer {
    const data = this.#objects.get(name);
    if (data === undefined) {
      throw new HoldfastError(
        'BACKEND_NOT_FOUND',
        `Object "${name}" does not exist in ${this.location}. Check that the location points at the right vault.`,
      );
    }
    return data;
  }
}
