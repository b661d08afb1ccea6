/**
 * A time limit for one backend operation, combined with the caller's cancellation signal. SDKs
 * take one `AbortSignal`; this gives them one that fires on either, and remembers which fired,
 * so the error can say CANCELLED (the caller gave up) or BACKEND_TRANSIENT (the store did not
 * answer in time). Call {@link OperationDeadline.dispose} when the operation ends.
 */
export class OperationDeadline {
  /** Pass this to every SDK call of the operation. */
  readonly signal: AbortSignal;

  readonly #controller = new AbortController();
  readonly #caller: AbortSignal | undefined;
  readonly #onCallerAbort = (): void => this.#controller.abort(this.#caller?.reason);
  #timer: NodeJS.Timeout | undefined;
  #expiresAt: number;
  #limitMs: number;
  #expired = false;

  /** Starts the clock: the signal fires after `ms`, or as soon as `caller` is aborted. */
  constructor(caller: AbortSignal | undefined, ms: number) {
    this.#caller = caller;
    this.signal = this.#controller.signal;
    this.#expiresAt = Date.now() + ms;
    this.#limitMs = ms;
    if (caller?.aborted === true) this.#controller.abort(caller.reason);
    else caller?.addEventListener('abort', this.#onCallerAbort, { once: true });
    this.#arm();
  }

  /** True when the time ran out (as opposed to the caller cancelling). */
  get expired(): boolean {
    return this.#expired;
  }

  /** The time allowed in total, extensions included, in milliseconds. */
  get limitMs(): number {
    return this.#limitMs;
  }

  /** True when the caller's signal was aborted. */
  get cancelled(): boolean {
    return this.#caller?.aborted === true;
  }

  /** Moves the end `ms` later, for example once a download's size is known. */
  extend(ms: number): void {
    if (this.signal.aborted) return;
    this.#expiresAt += ms;
    this.#limitMs += ms;
    this.#arm();
  }

  /** Stops the clock and forgets the caller's signal. */
  dispose(): void {
    clearTimeout(this.#timer);
    this.#caller?.removeEventListener('abort', this.#onCallerAbort);
  }

  #arm(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(
      () => {
        this.#expired = true;
        this.#controller.abort(new Error('The operation timed out.'));
      },
      Math.max(0, this.#expiresAt - Date.now()),
    );
  }
}
