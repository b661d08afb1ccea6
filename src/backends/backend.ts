/**
 * The contract every storage location implements. A backend moves bytes and classifies
 * errors, nothing else: retry, limits, metrics and fault injection wrap this interface.
 *
 * Names are `/`-separated relative paths such as `packs/ab/ab12…` or `holdfast.json`; they never
 * start with `/`, never contain `..` segments or empty segments.
 */
export interface Backend {
  /** What this backend can and cannot do. */
  readonly capabilities: BackendCapabilities;

  /** A description of the location without credentials, for messages and logs. */
  readonly location: string;

  /**
   * Stores `data` under `name`.
   * - MUST be atomic: a reader sees either no object or the complete object, never a prefix.
   * - MUST be durable when it resolves (fsync or the store's acknowledgement).
   * - With `ifNotExists`, MUST fail with BACKEND_EXISTS when the name exists, and otherwise
   *   replace silently.
   * - MUST NOT write anything once `signal` is aborted.
   */
  put(name: string, data: Uint8Array, options?: PutOptions): Promise<void>;

  /** Returns the whole object. MUST fail with BACKEND_NOT_FOUND when it does not exist. */
  get(name: string, options?: OpOptions): Promise<Buffer>;

  /**
   * Returns `length` bytes starting at `offset`. MUST fail with BACKEND_NOT_FOUND when the
   * object does not exist, and SHOULD return fewer bytes (never more) when the range passes the
   * end, so callers can detect truncation.
   */
  getRange(name: string, offset: number, length: number, options?: OpOptions): Promise<Buffer>;

  /**
   * Lists objects whose names start with `prefix` (`''` lists all), each once, in no
   * particular order. Yields lazily so callers can stop early; memory stays bounded.
   */
  list(prefix: string, options?: OpOptions): AsyncIterable<ObjectInfo>;

  /** Size of one object. MUST fail with BACKEND_NOT_FOUND when it does not exist. */
  stat(name: string, options?: OpOptions): Promise<ObjectInfo>;

  /** Removes an object. MUST fail with BACKEND_NOT_FOUND when it does not exist. */
  delete(name: string, options?: OpOptions): Promise<void>;

  /**
   * Only where `capabilities.objectLock`: locks the object against deletion and change until
   * `until` (ms since the epoch). Never shortens a lock, never weakens its mode; an object
   * already locked at least that long is left alone. `stat` shows the lock (`retainUntil`).
   */
  extendRetention?(name: string, until: number, options: RetentionOptions): Promise<void>;

  /** Releases connections and handles. The backend is unusable afterwards. */
  close(): Promise<void>;
}

/** A plain record of what a backend supports, so callers need not guess. */
export interface BackendCapabilities {
  /** `put` honours `ifNotExists` atomically. */
  readonly conditionalPut: boolean;
  /** `getRange` is cheaper than `get` (no full download). */
  readonly rangeReads: boolean;
  /** `list` sees every completed put at once (read-after-write for listings). */
  readonly consistentList: boolean;
  /** Objects can be written with a retention lock. */
  readonly objectLock: boolean;
}

/** Cancellation for one operation (STYLE.md principle 6). */
export interface OpOptions {
  readonly signal?: AbortSignal;
}

/** Options for {@link Backend.put}. */
export interface PutOptions extends OpOptions {
  /** Fail with BACKEND_EXISTS instead of replacing an existing object. */
  readonly ifNotExists?: boolean;
}

/** One object as seen by `list` and `stat`. */
export interface ObjectInfo {
  readonly name: string;
  readonly size: number;
  /** From `stat` on a backend with object locks: the object is locked until then (ms). */
  readonly retainUntil?: number;
}

/**
 * How an object is locked: `governance` (an account with a special permission could still
 * remove it; used while a vault's immutability is `enabled`) or `compliance` (nobody can before
 * the date; used once it is `locked`).
 */
export type RetentionMode = 'governance' | 'compliance';

/** Options of {@link Backend.extendRetention}. */
export interface RetentionOptions extends OpOptions {
  readonly mode: RetentionMode;
}
