import { readFileSync } from 'node:fs';
import { ERROR_CODES, HoldfastError, type ErrorCode } from '../core/index.js';
import type { Backend, BackendCapabilities, ObjectInfo, OpOptions, PutOptions } from './backend.js';
import { assertObjectName, assertObjectPrefix, assertRange } from './object-name.js';

/** The form of a vault reached through a Holdfast server, for messages. */
export const SERVER_URL_FORM = 'http(s)://<server>/vaults/<name>';

/** Where a server vault is and the token that opens it. */
export interface ServerBackendConfig {
  /** `http(s)://host:port` of the server. */
  readonly server: string;
  readonly vault: string;
  readonly token: string;
  /** Objects per listing request (the server allows up to 5000, its default). */
  readonly listPageSize?: number;
}

/**
 * A vault reached through a Holdfast server's object endpoint (docs/agents.md) instead of the
 * storage itself: the agent holds an API token, the server holds the storage credentials and
 * decides what the token may do (an agent token may add, never delete or overwrite).
 */
export class ServerBackend implements Backend {
  readonly capabilities: BackendCapabilities = {
    conditionalPut: true,
    rangeReads: true,
    consistentList: true,
    objectLock: false,
  };
  readonly location: string;
  readonly #base: string;
  readonly #token: string;
  readonly #pageSize: number | undefined;

  /**
   * `http(s)://host:port/vaults/<name>`, the token from HOLDFAST_TOKEN or the file named by
   * HOLDFAST_TOKEN_FILE.
   */
  static fromUrl(url: string, env: NodeJS.ProcessEnv): ServerBackend {
    const parsed = new URL(url);
    const match = /^\/vaults\/([^/]+)\/?$/.exec(parsed.pathname);
    if (match === null || parsed.username !== '' || parsed.password !== '' || parsed.search !== '')
      throw new HoldfastError(
        'USAGE_INVALID',
        `A vault on a Holdfast server is given as ${SERVER_URL_FORM}, e.g. http://127.0.0.1:8440/vaults/main.`,
      );
    return new ServerBackend({
      server: parsed.origin,
      vault: decodeURIComponent(match[1]!),
      token: tokenFrom(env),
    });
  }

  constructor(config: ServerBackendConfig) {
    this.location = `${config.server}/vaults/${config.vault}`;
    this.#base = `${config.server}/api/vaults/${encodeURIComponent(config.vault)}/objects`;
    this.#token = config.token;
    this.#pageSize = config.listPageSize;
  }

  async put(name: string, data: Uint8Array, options: PutOptions = {}): Promise<void> {
    assertObjectName(name);
    await this.#request('PUT', this.#url(name), name, options, {
      body: data,
      headers: {
        'content-type': 'application/octet-stream',
        ...(options.ifNotExists ? { 'if-none-match': '*' } : {}),
      },
    });
  }

  async get(name: string, options: OpOptions = {}): Promise<Buffer> {
    assertObjectName(name);
    const response = await this.#request('GET', this.#url(name), name, options);
    return Buffer.from(await response.arrayBuffer());
  }

  async getRange(
    name: string,
    offset: number,
    length: number,
    options: OpOptions = {},
  ): Promise<Buffer> {
    assertObjectName(name);
    assertRange(offset, length);
    if (length === 0) {
      await this.stat(name, options);
      return Buffer.alloc(0);
    }
    const response = await this.#request('GET', this.#url(name), name, options, {
      headers: { range: `bytes=${offset}-${offset + length - 1}` },
    });
    return Buffer.from(await response.arrayBuffer());
  }

  async *list(prefix: string, options: OpOptions = {}): AsyncIterable<ObjectInfo> {
    assertObjectPrefix(prefix);
    let after: string | undefined;
    do {
      const query = new URLSearchParams({
        prefix,
        ...(after ? { after } : {}),
        ...(this.#pageSize ? { limit: String(this.#pageSize) } : {}),
      });
      const response = await this.#request('GET', `${this.#base}?${query}`, prefix, options);
      const page = (await response.json()) as { data: ObjectInfo[]; next?: string };
      for (const info of page.data) yield { name: info.name, size: info.size };
      after = page.next;
    } while (after !== undefined);
  }

  async stat(name: string, options: OpOptions = {}): Promise<ObjectInfo> {
    assertObjectName(name);
    const response = await this.#request('HEAD', this.#url(name), name, options);
    return { name, size: Number(response.headers.get('content-length') ?? 0) };
  }

  async delete(name: string, options: OpOptions = {}): Promise<void> {
    assertObjectName(name);
    await this.#request('DELETE', this.#url(name), name, options);
  }

  async close(): Promise<void> {}

  #url(name: string): string {
    return `${this.#base}/${name.split('/').map(encodeURIComponent).join('/')}`;
  }

  async #request(
    method: string,
    url: string,
    name: string,
    options: OpOptions,
    init: { body?: Uint8Array; headers?: Record<string, string> } = {},
  ): Promise<Response> {
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: { authorization: `Bearer ${this.#token}`, ...init.headers },
        ...(init.body ? { body: init.body } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      });
    } catch (error) {
      if (options.signal?.aborted)
        throw new HoldfastError('CANCELLED', 'The operation was cancelled.', { cause: error });
      throw new HoldfastError(
        'BACKEND_TRANSIENT',
        `The Holdfast server at ${this.location} did not answer (${describe(error)}); is it running?`,
        { cause: error },
      );
    }
    if (response.ok) return response;
    throw await errorOf(response, method, name, this.location);
  }
}

function tokenFrom(env: NodeJS.ProcessEnv): string {
  const direct = env['HOLDFAST_TOKEN'];
  if (direct !== undefined && direct.trim() !== '') return direct.trim();
  const file = env['HOLDFAST_TOKEN_FILE'];
  if (file !== undefined && file !== '') {
    try {
      return readFileSync(file, 'utf8').trim();
    } catch (error) {
      throw new HoldfastError(
        'USAGE_INVALID',
        `Cannot read the token file ${file} (HOLDFAST_TOKEN_FILE): ${describe(error)}.`,
      );
    }
  }
  throw new HoldfastError(
    'USAGE_INVALID',
    'A vault on a Holdfast server needs an API token: set HOLDFAST_TOKEN or HOLDFAST_TOKEN_FILE (an agent token from `holdfast token create <name> --agent-for <vault>`).',
  );
}

/** The server's own error code where it has one; otherwise by status. */
async function errorOf(
  response: Response,
  method: string,
  name: string,
  location: string,
): Promise<HoldfastError> {
  let code: string | undefined;
  let message: string | undefined;
  if (method !== 'HEAD') {
    try {
      const body = (await response.json()) as { error?: { code?: string; message?: string } };
      code = body.error?.code;
      message = body.error?.message;
    } catch {
      // Not our JSON (a proxy's page): the status decides.
    }
  }
  const status = response.status;
  const what = `${method} ${name} on ${location}`;
  if (status === 404 && (code === undefined || code === 'BACKEND_NOT_FOUND'))
    return new HoldfastError('BACKEND_NOT_FOUND', `${name} does not exist in ${location}.`);
  if (status === 401 || (status === 403 && code === undefined))
    return new HoldfastError(
      'BACKEND_PERMISSION',
      `The Holdfast server at ${location} refused the token (${message ?? 'unauthorized'}).`,
    );
  if (status >= 500 || status === 429 || status === 408)
    return new HoldfastError(
      'BACKEND_TRANSIENT',
      `${what} failed: ${message ?? `HTTP ${status}`}.`,
    );
  if (code !== undefined && (ERROR_CODES as readonly string[]).includes(code))
    return new HoldfastError(code as ErrorCode, message ?? `${what} failed (${code}).`);
  return new HoldfastError('BACKEND_IO', `${what} failed: HTTP ${status}.`);
}

function describe(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error instanceof Error ? error.message : String(error));
}
