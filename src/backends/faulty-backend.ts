import { HoldfastError, throwIfAborted, type ErrorCode } from '../core/index.js';
import type {
  Backend,
  BackendCapabilities,
  ObjectInfo,
  OpOptions,
  PutOptions,
  RetentionOptions,
} from './backend.js';
import { requireRetention } from './retention.js';

/** The backend operations a fault rule can target. */
export const FAULT_OPS = ['put', 'get', 'getRange', 'list', 'stat', 'delete'] as const;
/** One of {@link FAULT_OPS}. */
export type FaultOp = (typeof FAULT_OPS)[number];

/** The faults {@link FaultyBackend} can inject. */
export const FAULT_KINDS = [
  'fail-transient',
  'fail-io',
  'no-space',
  'delay',
  'truncate',
  'corrupt',
] as const;
/** One of {@link FAULT_KINDS}. */
export type FaultKind = (typeof FAULT_KINDS)[number];

/**
 * When and how to inject one fault. A rule matches a call when `op` and `namePrefix` match (for
 * `list`, the listing prefix is compared). Of the matching calls, it fires on those that satisfy
 * every condition given: `nth`, `every` and `probability`; with none given it fires on all.
 * - `fail-transient`, `fail-io`, `no-space` throw BACKEND_TRANSIENT, BACKEND_IO or
 *   BACKEND_NO_SPACE before the wrapped backend is called, so nothing is written.
 * - `delay` waits `delayMs` first (an abort ends the wait with CANCELLED).
 * - `truncate` keeps the first half of the bytes, `corrupt` flips every bit of the middle byte:
 *   on `get`/`getRange` in the returned copy, on `put` in what is stored (a lying disk). Both do
 *   nothing to other operations and to empty data.
 */
export interface FaultRule {
  readonly op: FaultOp | 'any';
  /** Fire only on this matching call (1-based, counted per rule). */
  readonly nth?: number;
  /** Fire on every `every`-th matching call. */
  readonly every?: number;
  /** Fire with this probability, drawn from {@link FaultyBackendOptions.random}. */
  readonly probability?: number;
  /** Match only names (or listing prefixes) starting with this. */
  readonly namePrefix?: string;
  readonly fault: FaultKind;
  /** How long `delay` waits; required for it. */
  readonly delayMs?: number;
}

/** Options for {@link FaultyBackend}. */
export interface FaultyBackendOptions {
  readonly rules: readonly FaultRule[];
  /** Uniform numbers in [0, 1); required when a rule has a `probability`. Seed it in tests. */
  readonly random?: () => number;
}

const FAIL_CODES: Partial<Record<FaultKind, ErrorCode>> = {
  'fail-transient': 'BACKEND_TRANSIENT',
  'fail-io': 'BACKEND_IO',
  'no-space': 'BACKEND_NO_SPACE',
};
const DATA_OPS: ReadonlySet<FaultOp | 'any'> = new Set(['put', 'get', 'getRange', 'any']);

interface RuleState {
  readonly rule: FaultRule;
  matched: number;
}

/**
 * A wrapper that injects failures, delays and damaged data into any backend according to a list
 * of rules, and counts calls per operation. It is deterministic: randomness comes only from the
 * injected `random`. Used to prove that retries, verification and crash handling work.
 */
export class FaultyBackend implements Backend {
  /** Those of the wrapped backend. */
  readonly capabilities: BackendCapabilities;
  /** That of the wrapped backend. */
  readonly location: string;

  readonly #inner: Backend;
  readonly #rules: RuleState[];
  readonly #random: (() => number) | undefined;
  readonly #calls = new Map<FaultOp, number>();
  readonly #faults = new Map<FaultKind, number>();

  /** Wraps `inner`; throws USAGE_INVALID for a rule that could never behave as written. */
  constructor(inner: Backend, options: FaultyBackendOptions) {
    options.rules.forEach((rule, index) => validateRule(rule, index, options.random));
    this.#inner = inner;
    this.#rules = options.rules.map((rule) => ({ rule, matched: 0 }));
    this.#random = options.random;
    this.capabilities = inner.capabilities;
    this.location = inner.location;
  }

  /** How many times `op` was called (every op for `'any'`), faulted or not. */
  callCount(op: FaultOp | 'any'): number {
    if (op !== 'any') return this.#calls.get(op) ?? 0;
    return [...this.#calls.values()].reduce((sum, n) => sum + n, 0);
  }

  /** How many faults of `kind` (of any kind when omitted) were injected. */
  faultCount(kind?: FaultKind): number {
    if (kind !== undefined) return this.#faults.get(kind) ?? 0;
    return [...this.#faults.values()].reduce((sum, n) => sum + n, 0);
  }

  /** Puts through the wrapped backend, possibly failing first or storing damaged bytes. */
  async put(name: string, data: Uint8Array, options?: PutOptions): Promise<void> {
    const damages = await this.#inject('put', name, options?.signal);
    return this.#inner.put(name, applyDamage(data, damages), options);
  }

  /** Gets through the wrapped backend, possibly failing first or damaging the copy returned. */
  async get(name: string, options?: OpOptions): Promise<Buffer> {
    const damages = await this.#inject('get', name, options?.signal);
    return applyDamage(await this.#inner.get(name, options), damages);
  }

  /** Like {@link FaultyBackend.get} for a range. */
  async getRange(
    name: string,
    offset: number,
    length: number,
    options?: OpOptions,
  ): Promise<Buffer> {
    const damages = await this.#inject('getRange', name, options?.signal);
    return applyDamage(await this.#inner.getRange(name, offset, length, options), damages);
  }

  /** Lists through the wrapped backend; faults apply when iteration starts. */
  async *list(prefix: string, options?: OpOptions): AsyncGenerator<ObjectInfo> {
    await this.#inject('list', prefix, options?.signal);
    yield* this.#inner.list(prefix, options);
  }

  /** Stats through the wrapped backend, possibly failing or delaying first. */
  async stat(name: string, options?: OpOptions): Promise<ObjectInfo> {
    await this.#inject('stat', name, options?.signal);
    return this.#inner.stat(name, options);
  }

  /** Extends a lock through the wrapped backend, possibly failing first (as a put). */
  async extendRetention(name: string, until: number, options: RetentionOptions): Promise<void> {
    const inner = requireRetention(this.#inner);
    await this.#inject('put', name, options.signal);
    return inner(name, until, options);
  }

  /** Deletes through the wrapped backend, possibly failing or delaying first. */
  async delete(name: string, options?: OpOptions): Promise<void> {
    await this.#inject('delete', name, options?.signal);
    return this.#inner.delete(name, options);
  }

  /** Closes the wrapped backend. */
  async close(): Promise<void> {
    return this.#inner.close();
  }

  /** Counts the call, applies delays and failures, and returns the damage to do to the data. */
  async #inject(op: FaultOp, name: string, signal: AbortSignal | undefined): Promise<FaultKind[]> {
    this.#calls.set(op, (this.#calls.get(op) ?? 0) + 1);
    const damages: FaultKind[] = [];
    for (const rule of this.#firing(op, name)) {
      const code = FAIL_CODES[rule.fault];
      if (rule.fault === 'delay') {
        this.#count(rule.fault);
        await sleep(rule.delayMs ?? 0, signal);
      } else if (code !== undefined) {
        this.#count(rule.fault);
        throw new HoldfastError(
          code,
          `Injected fault (${rule.fault}) on ${op} "${name}" in ${this.location}.`,
        );
      } else if (op === 'put' || op === 'get' || op === 'getRange') {
        this.#count(rule.fault);
        damages.push(rule.fault);
      }
    }
    return damages;
  }

  /** Advances every matching rule's counter, then returns the rules that fire, in order. */
  #firing(op: FaultOp, name: string): FaultRule[] {
    const fired: FaultRule[] = [];
    for (const state of this.#rules) {
      const { rule } = state;
      if (rule.op !== 'any' && rule.op !== op) continue;
      if (rule.namePrefix !== undefined && !name.startsWith(rule.namePrefix)) continue;
      state.matched += 1;
      if (rule.nth !== undefined && state.matched !== rule.nth) continue;
      if (rule.every !== undefined && state.matched % rule.every !== 0) continue;
      // The constructor guarantees a random source whenever a rule has a probability.
      if (rule.probability !== undefined && !(this.#random!() < rule.probability)) continue;
      fired.push(rule);
    }
    return fired;
  }

  #count(kind: FaultKind): void {
    this.#faults.set(kind, (this.#faults.get(kind) ?? 0) + 1);
  }
}

/** Applies `kinds` in order, each to a fresh copy; returns `data` itself when there are none. */
function applyDamage(data: Buffer, kinds: readonly FaultKind[]): Buffer;
function applyDamage(data: Uint8Array, kinds: readonly FaultKind[]): Uint8Array;
function applyDamage(data: Uint8Array, kinds: readonly FaultKind[]): Uint8Array {
  let result = data;
  for (const kind of kinds) {
    if (kind === 'truncate') {
      result = Buffer.from(result.subarray(0, Math.floor(result.length / 2)));
    } else if (result.length > 0) {
      const copy = Buffer.from(result);
      const at = Math.floor(copy.length / 2);
      copy.writeUInt8(copy.readUInt8(at) ^ 0xff, at);
      result = copy;
    }
  }
  return result;
}

function validateRule(rule: FaultRule, index: number, random: (() => number) | undefined): void {
  const fail = (problem: string): never => {
    throw new HoldfastError(
      'USAGE_INVALID',
      `Fault rule ${index + 1} (${rule.fault}): ${problem}.`,
    );
  };
  const positiveInt = (n: number | undefined): boolean =>
    n === undefined || (Number.isSafeInteger(n) && n >= 1);
  if (!positiveInt(rule.nth)) fail('nth must be an integer >= 1');
  if (!positiveInt(rule.every)) fail('every must be an integer >= 1');
  if (rule.probability !== undefined) {
    if (!(rule.probability >= 0 && rule.probability <= 1)) fail('probability must be in [0, 1]');
    if (random === undefined) fail('a probability needs the random option (seed it)');
  }
  if (rule.fault === 'delay' && !(rule.delayMs !== undefined && rule.delayMs >= 0)) {
    fail('delay needs delayMs >= 0');
  }
  if ((rule.fault === 'truncate' || rule.fault === 'corrupt') && !DATA_OPS.has(rule.op)) {
    fail(`it cannot damage data on ${rule.op}, which carries none`);
  }
}

/** Waits `ms` on the global timer (so fake timers can drive it); an abort ends it with CANCELLED. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  throwIfAborted(signal);
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(
        new HoldfastError('CANCELLED', 'The operation was cancelled.', { cause: signal?.reason }),
      );
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
