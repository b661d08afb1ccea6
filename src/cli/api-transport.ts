import { ERROR_CODES, HoldfastError, type ErrorCode } from '../core/index.js';

/** One entry of an error answer's `details`: which field was wrong, and why. */
export interface ApiErrorDetail {
  readonly path: string;
  readonly message: string;
}

/**
 * An error answer of the REST API (`{ error: { code, message, details? } }`) as a
 * {@link HoldfastError}: `code` is the server's code (or, for a code this CLI does not know, the
 * closest one for the HTTP status), `serverCode` the code exactly as the server sent it.
 */
export class ApiError extends HoldfastError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly serverCode: string,
    readonly status: number,
    readonly details: readonly ApiErrorDetail[],
  ) {
    super(code, message);
  }
}

/** Where the server is and how to authenticate; the token itself is never printed. */
export interface ServerAccess {
  /** Base URL without a trailing slash, e.g. `http://127.0.0.1:8440`. */
  readonly url: string;
  readonly token: string | undefined;
  /** Where the token came from (or why there is none), for error messages. */
  readonly tokenSource: string;
}

/** HTTP methods the API uses. */
export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** How long one request may take before the server counts as unreachable. */
export const REQUEST_TIMEOUT_MS = 30_000;

const KNOWN_CODES: ReadonlySet<string> = new Set(ERROR_CODES);

/**
 * JSON over HTTP to the Holdfast server with a bearer token, on Node's `fetch`. Turns error
 * answers into {@link ApiError}, connection failures and timeouts into SERVER_UNREACHABLE, and
 * an aborted `signal` into CANCELLED.
 */
export class ApiTransport {
  constructor(
    readonly access: ServerAccess,
    private readonly signal?: AbortSignal,
    private readonly timeoutMs = REQUEST_TIMEOUT_MS,
  ) {}

  /** Sends one request; resolves with the parsed JSON answer, or undefined for 204. */
  async request<T>(method: HttpMethod, path: string, body?: unknown): Promise<T> {
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const signal = this.signal ? AbortSignal.any([this.signal, timeout]) : timeout;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.access.token !== undefined) headers['authorization'] = `Bearer ${this.access.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    let text: string;
    try {
      response = await fetch(this.access.url + path, {
        method,
        headers,
        body: body === undefined ? null : JSON.stringify(body),
        signal,
      });
      text = await response.text();
    } catch (error) {
      throw this.networkError(error, timeout, method);
    }
    if (!response.ok) throw this.answerError(response, text);
    if (response.status === 204 || text === '') return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch (error) {
      throw new HoldfastError(
        'INTERNAL',
        `The server at ${this.access.url} answered ${method} ${path} with something that is not JSON. Is --server pointing at a Holdfast server?`,
        { cause: error },
      );
    }
  }

  private networkError(error: unknown, timeout: AbortSignal, method: HttpMethod): HoldfastError {
    if (this.signal?.aborted) {
      return new HoldfastError('CANCELLED', 'Interrupted.', { cause: this.signal.reason });
    }
    const hint =
      "Start it with 'holdfast server' (or point --server / HOLDFAST_SERVER at it), or pass " +
      '--vault <location> to work on a vault directly, without the server.';
    if (timeout.aborted) {
      const maybe = method === 'GET' ? '' : ' The request may or may not have been carried out.';
      return new HoldfastError(
        'SERVER_UNREACHABLE',
        `The Holdfast server at ${this.access.url} did not answer within ${this.timeoutMs / 1000} s.${maybe} ${hint}`,
        { cause: error },
      );
    }
    return new HoldfastError(
      'SERVER_UNREACHABLE',
      `Cannot reach the Holdfast server at ${this.access.url} (${networkReason(error)}). ${hint}`,
      { cause: error },
    );
  }

  private answerError(response: Response, text: string): ApiError {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    const body = isRecord(parsed) && isRecord(parsed['error']) ? parsed['error'] : {};
    const serverCode = typeof body['code'] === 'string' ? body['code'] : undefined;
    const code =
      serverCode !== undefined && KNOWN_CODES.has(serverCode)
        ? (serverCode as ErrorCode)
        : codeForStatus(response.status);
    let message =
      typeof body['message'] === 'string'
        ? body['message']
        : `The server answered HTTP ${response.status} ${response.statusText}.`;
    if (code === 'AUTH_REQUIRED') {
      message += ` The token used: ${this.access.tokenSource}. Set HOLDFAST_TOKEN, pass --token-file <file>, or create one with 'holdfast token create <name>'.`;
    }
    return new ApiError(
      code,
      message,
      serverCode ?? code,
      response.status,
      parseDetails(body['details']),
    );
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The system's reason for a failed connection, e.g. `ECONNREFUSED`. */
function networkReason(error: unknown): string {
  const cause = error instanceof Error ? error.cause : undefined;
  if (isRecord(cause) && typeof cause['code'] === 'string') return cause['code'];
  if (cause instanceof Error) return cause.message;
  return error instanceof Error ? error.message : String(error);
}

/** The closest code for an HTTP status when the answer names none this CLI knows. */
function codeForStatus(status: number): ErrorCode {
  if (status === 400 || status === 422) return 'REQUEST_INVALID';
  if (status === 401 || status === 403) return 'AUTH_REQUIRED';
  if (status === 404) return 'RESOURCE_NOT_FOUND';
  if (status === 409) return 'STATE_CONFLICT';
  if (status === 413) return 'REQUEST_TOO_LARGE';
  if (status === 502 || status === 503 || status === 504) return 'SERVER_UNREACHABLE';
  return 'INTERNAL';
}

/** `details` as `path: message` pairs, from a list of issues or a map of field to message. */
function parseDetails(value: unknown): ApiErrorDetail[] {
  if (Array.isArray(value)) {
    return value.map((entry) => {
      if (!isRecord(entry)) return { path: '', message: String(entry) };
      const path = Array.isArray(entry['path'])
        ? entry['path'].map(String).join('.')
        : String(entry['path'] ?? '');
      const message =
        typeof entry['message'] === 'string' ? entry['message'] : JSON.stringify(entry);
      return { path, message };
    });
  }
  if (isRecord(value)) {
    return Object.entries(value).map(([path, message]) => ({
      path,
      message: typeof message === 'string' ? message : JSON.stringify(message),
    }));
  }
  return [];
}
