import { createConnection, type Socket } from 'node:net';
import { HoldfastError } from '../../core/index.js';

/** A QMP error answer: QEMU's error class and description. */
export class QmpError extends Error {
  override readonly name = 'QmpError';

  /**
   * @param command The command QEMU refused.
   * @param errorClass QEMU's error class: `GenericError`, `CommandNotFound`, `DeviceNotFound`…
   * @param description QEMU's own description of what went wrong.
   */
  constructor(
    readonly command: string,
    readonly errorClass: string,
    readonly description: string,
  ) {
    super(`QEMU refused the QMP command ${command}: ${description} (${errorClass}).`);
  }
}

/** An asynchronous event QEMU sent (`BLOCK_JOB_COMPLETED`, `BLOCK_EXPORT_DELETED`, …). */
export interface QmpEvent {
  readonly event: string;
  readonly data?: unknown;
  readonly timestamp?: { readonly seconds: number; readonly microseconds: number };
}

/** QEMU's version as its QMP greeting states it. */
export interface QemuVersion {
  readonly major: number;
  readonly minor: number;
  readonly micro: number;
}

type Message = Record<string, unknown>;

interface Pending {
  readonly command: string;
  readonly timer: NodeJS.Timeout;
  resolve(value: unknown): void;
  reject(error: Error): void;
}

/** How many events {@link QmpClient.events} keeps, newest last. */
const KEPT_EVENTS = 100;
/** What a failed connect means, by errno, and what to check. */
const CONNECT_HINTS: Partial<Record<string, string>> = {
  ENOENT:
    'it does not exist: check that the VM or daemon is running with a QMP monitor on this path',
  ECONNREFUSED: 'nothing listens on it: check that the VM or daemon that made it still runs',
  EACCES: 'permission denied: run Holdfast as a user that may open the socket',
};
const NO_HANDSHAKE = (ms: number) =>
  `no QMP handshake within ${ms} ms: check that it is a QMP monitor (not HMP or a console) and ` +
  'that no other client is connected, as QEMU serves one QMP client per monitor at a time';
/** The largest QMP line accepted; QEMU's biggest answers (query-qmp-schema) are well under. */
const MAX_LINE = 64 * 1024 * 1024;

/**
 * A QMP (QEMU Machine Protocol) client over a UNIX socket: newline-delimited JSON, answers
 * matched to commands by `id`, so several commands may be pending at once. QEMU serves one
 * client per monitor at a time: while this client is connected, another waits without a greeting.
 */
export class QmpClient {
  /** QEMU's version from the greeting, e.g. `{ major: 7, minor: 2, micro: 0 }`. */
  readonly version: QemuVersion;
  /** The last {@link KEPT_EVENTS} events QEMU sent, oldest first. Nothing waits on them. */
  readonly events: QmpEvent[] = [];
  readonly #socket: Socket;
  readonly #path: string;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #failure: unknown;
  #closing: Promise<void> | undefined;

  private constructor(socket: Socket, path: string, version: QemuVersion) {
    this.#socket = socket;
    this.#path = path;
    this.version = version;
    socket.on('error', (error) => (this.#failure ??= error));
    socket.on('close', () => this.#rejectAll());
  }

  /**
   * Connects, reads the greeting and sends `qmp_capabilities`. Rejects with SOURCE_UNREADABLE
   * when the socket is missing, refuses, or does not speak QMP within `timeoutMs` (10 s), and
   * with CANCELLED when `signal` aborts first.
   */
  static connect(
    socketPath: string,
    options: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<QmpClient> {
    const { timeoutMs = 10_000, signal } = options;
    const deadline = Date.now() + timeoutMs;
    return new Promise<QmpClient>((resolve, reject) => {
      const socket = createConnection({ path: socketPath });
      let client: QmpClient | undefined;
      const settle = (error?: Error) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        socket.off('error', onError);
        if (error === undefined && client) return resolve(client);
        socket.destroy();
        reject(error);
      };
      const fail = (problem: string, cause?: unknown) =>
        settle(unreadable(socketPath, problem, cause));
      const onAbort = () => {
        const message = `Connecting to the QMP socket ${socketPath} was cancelled.`;
        settle(new HoldfastError('CANCELLED', message, { cause: signal?.reason }));
      };
      const onError = (error: NodeJS.ErrnoException) =>
        fail(
          CONNECT_HINTS[error.code ?? ''] ?? `${error.message}: ${CONNECT_HINTS['ENOENT']}`,
          error,
        );
      const timer = setTimeout(() => fail(NO_HANDSHAKE(timeoutMs)), timeoutMs);
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      socket.on('error', onError);
      readMessages(socket, (message) => {
        if (client) return client.#receive(message);
        const version = greetingVersion(message);
        if (!version)
          return fail(
            `it sent ${JSON.stringify(message).slice(0, 200)} instead of a QMP greeting: check that this is a QMP monitor socket`,
          );
        client = new QmpClient(socket, socketPath, version);
        const timeout = { timeoutMs: Math.max(1, deadline - Date.now()) };
        client.execute('qmp_capabilities', undefined, timeout).then(
          () => settle(),
          (error: unknown) => fail(`qmp_capabilities failed: ${String(error)}`, error),
        );
      });
    });
  }

  /**
   * Runs one command and resolves with its `return` value. Rejects with {@link QmpError} on an
   * `error` answer, and with SOURCE_UNREADABLE when the connection drops or no answer comes
   * within `timeoutMs` (30 s); a late answer is then dropped.
   */
  execute<T = unknown>(
    command: string,
    args?: Record<string, unknown>,
    options: { timeoutMs?: number } = {},
  ): Promise<T> {
    const { timeoutMs = 30_000 } = options;
    return new Promise<T>((resolve, reject) => {
      if (this.#closing || this.#socket.destroyed) return reject(this.#lost(command));
      const id = this.#nextId++;
      let line: string;
      try {
        line = JSON.stringify(
          args === undefined ? { execute: command, id } : { execute: command, arguments: args, id },
        );
      } catch (error) {
        const message = `The arguments of the QMP command ${command} cannot be sent as JSON: ${String(error)}.`;
        return reject(new HoldfastError('INTERNAL', message, { cause: error }));
      }
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        const problem = `QEMU did not answer ${command} within ${timeoutMs} ms; check that the VM or daemon is not hung`;
        reject(unreadable(this.#path, problem));
      }, timeoutMs);
      this.#pending.set(id, { command, timer, resolve: resolve as Pending['resolve'], reject });
      this.#socket.write(`${line}\n`);
    });
  }

  /** Closes the socket; commands still pending reject. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      if (this.#socket.closed) return resolve();
      this.#socket.once('close', () => resolve());
      this.#socket.destroy();
    });
    return this.#closing;
  }

  #receive(message: Message): void {
    if (typeof message['event'] === 'string') {
      this.events.push(message as unknown as QmpEvent);
      if (this.events.length > KEPT_EVENTS) this.events.shift();
      return;
    }
    // Answers without a known id (to a line QEMU could not parse, or after a timeout) are dropped.
    const id = message['id'];
    const pending = typeof id === 'number' ? this.#pending.get(id) : undefined;
    if (pending === undefined || typeof id !== 'number') return;
    this.#pending.delete(id);
    clearTimeout(pending.timer);
    const error = message['error'] as { class?: unknown; desc?: unknown } | undefined;
    if (typeof error === 'object' && error !== null) {
      pending.reject(new QmpError(pending.command, String(error.class), String(error.desc)));
    } else if ('return' in message) {
      pending.resolve(message['return']);
    } else {
      const problem = `QEMU answered ${pending.command} with neither return nor error`;
      pending.reject(unreadable(this.#path, problem));
    }
  }

  #rejectAll(): void {
    for (const [id, pending] of this.#pending) {
      this.#pending.delete(id);
      clearTimeout(pending.timer);
      pending.reject(this.#lost(pending.command));
    }
  }

  #lost(command: string): HoldfastError {
    if (this.#closing)
      return unreadable(this.#path, `the client was closed before ${command} was answered`);
    const reason = this.#failure instanceof Error ? ` (${this.#failure.message})` : '';
    const problem = `the connection closed before QEMU answered ${command}${reason}: check that the VM or daemon is still running`;
    return unreadable(this.#path, problem, this.#failure);
  }
}

/** Calls `onMessage` for each JSON object line; a partial line waits for the rest. */
function readMessages(socket: Socket, onMessage: (message: Message) => void): void {
  let partial = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line.trim() === '') continue;
      let message: unknown;
      try {
        message = JSON.parse(line);
      } catch {
        message = undefined;
      }
      if (typeof message !== 'object' || message === null || Array.isArray(message)) {
        const problem = `QEMU sent a line that is not a JSON object: ${line.slice(0, 200)}`;
        return void socket.destroy(new Error(problem));
      }
      onMessage(message as Message);
      if (socket.destroyed) return;
    }
    if (partial.length > MAX_LINE)
      socket.destroy(new Error(`QEMU sent a line over ${MAX_LINE} bytes`));
  });
}

function greetingVersion(message: Message): QemuVersion | undefined {
  const qmp = message['QMP'] as { version?: { qemu?: Record<string, unknown> } } | undefined;
  const qemu = qmp?.version?.qemu;
  const { major, minor, micro } = qemu ?? {};
  if (typeof major !== 'number' || typeof minor !== 'number' || typeof micro !== 'number')
    return undefined;
  return { major, minor, micro };
}

function unreadable(socketPath: string, problem: string, cause?: unknown): HoldfastError {
  const message = `Cannot talk QMP to QEMU on ${socketPath}: ${problem}.`;
  return new HoldfastError('SOURCE_UNREADABLE', message, cause === undefined ? {} : { cause });
}
