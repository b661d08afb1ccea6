import { randomBytes } from 'node:crypto';
import type { BlobDownloadResponseParsed, ContainerClient } from '@azure/storage-blob';
import { HoldfastError, throwIfAborted } from '../core/index.js';
import type { Backend, BackendCapabilities, ObjectInfo, OpOptions, PutOptions } from './backend.js';
import {
  azureErrorParts,
  classifyAzureError,
  isContainerNotFound,
  type AzureAction,
} from './azure-errors.js';
import { containerClientFromEnv } from './azure-client.js';
import { formatAzureLocation, parseAzurePrefix, parseAzureUrl } from './azure-location.js';
import {
  assertObjectName,
  assertObjectPrefix,
  assertRange,
  objectNameProblem,
} from './object-name.js';
import { OperationDeadline } from './operation-deadline.js';

const MiB = 1024 * 1024;

/** Tuning of {@link AzureBlobBackend}; every field has a default. */
export interface AzureBlobBackendOptions {
  /**
   * Create the container when a put finds it missing, as `init` wants. Off by default, so that
   * opening a mistyped location fails instead of creating an empty container.
   */
  readonly createContainer?: boolean;
  /** Objects up to this size go in one Put Blob request (default 32 MiB, at most 256 MiB). */
  readonly singleShotBytes?: number;
  /** Larger objects are staged in blocks of this size, then committed at once (default 8 MiB). */
  readonly blockBytes?: number;
  /** Blocks of one object uploaded in parallel (default 4). */
  readonly uploadConcurrency?: number;
  /** Names per listing request; Azure allows up to 5000 (the default). */
  readonly listPageSize?: number;
  /**
   * Time limit of one operation, SDK retries included, before it fails BACKEND_TRANSIENT
   * (default 120 s). Transfers get {@link AzureBlobBackendOptions.minBytesPerSecond} on top.
   */
  readonly timeoutMs?: number;
  /** Slowest transfer rate allowed for in the time limit (default 256 KiB/s). */
  readonly minBytesPerSecond?: number;
}

/** How the Azure SDK retries one request before the backend sees an error. */
export interface AzureRetryOptions {
  /** Attempts in total, the first included (default 3). */
  readonly maxTries?: number;
  /** Base of the exponential delay: retries wait 0, 1×, 3×, 7× this (default 1000 ms). */
  readonly retryDelayMs?: number;
  /** Upper bound of one delay (default 10 s). */
  readonly maxRetryDelayMs?: number;
}

/** Options of {@link AzureBlobBackend.fromUrl}. */
export interface AzureBlobFromUrlOptions extends AzureBlobBackendOptions {
  readonly retry?: AzureRetryOptions;
}

/** The SDK retry settings {@link AzureBlobBackend.fromUrl} uses unless told otherwise. */
export const AZURE_DEFAULT_RETRY: Required<AzureRetryOptions> = Object.freeze({
  maxTries: 3,
  retryDelayMs: 1000,
  maxRetryDelayMs: 10_000,
});

/**
 * A backend on Azure Blob Storage: each object is a block blob named `<prefix><name>` in one
 * container. Put Blob and Put Block List are atomic, so readers see no object or all of it;
 * `ifNotExists` is `If-None-Match: *` on the request that publishes the blob.
 */
export class AzureBlobBackend implements Backend {
  /** Conditional puts, ranged downloads and strongly consistent listings; no object lock yet. */
  readonly capabilities: BackendCapabilities = Object.freeze({
    conditionalPut: true,
    rangeReads: true,
    consistentList: true,
    objectLock: false,
  });

  /** `azure://<account>/<container>[/<prefix>]`, without credentials. */
  readonly location: string;

  readonly #client: ContainerClient;
  readonly #prefix: string;
  readonly #createContainer: boolean;
  readonly #singleShotBytes: number;
  readonly #blockBytes: number;
  readonly #uploadConcurrency: number;
  readonly #listPageSize: number;
  readonly #timeoutMs: number;
  readonly #minBytesPerSecond: number;

  /**
   * A backend on `client`'s container under `prefix` (a `/`-separated path, or `''`). The client
   * carries the credentials and the SDK retry settings; {@link AzureBlobBackend.fromUrl} builds
   * one from a location and the environment.
   */
  constructor(
    client: ContainerClient,
    options: AzureBlobBackendOptions & { prefix?: string } = {},
  ) {
    this.#client = client;
    this.#prefix = parseAzurePrefix(options.prefix ?? '');
    this.location = formatAzureLocation({
      account: client.accountName,
      container: client.containerName,
      prefix: this.#prefix,
    });
    this.#createContainer = options.createContainer ?? false;
    this.#singleShotBytes = Math.min(options.singleShotBytes ?? 32 * MiB, 256 * MiB);
    this.#blockBytes = options.blockBytes ?? 8 * MiB;
    this.#uploadConcurrency = options.uploadConcurrency ?? 4;
    this.#listPageSize = options.listPageSize ?? 5000;
    this.#timeoutMs = options.timeoutMs ?? 120_000;
    this.#minBytesPerSecond = options.minBytesPerSecond ?? 256 * 1024;
  }

  /**
   * Opens `azure://<account>/<container>[/<prefix>]` with credentials from `env`
   * (`AZURE_STORAGE_CONNECTION_STRING`, `AZURE_STORAGE_KEY` or `AZURE_STORAGE_SAS_TOKEN`; see
   * `containerClientFromEnv`). Does no I/O; a wrong key shows on the first operation.
   */
  static fromUrl(
    url: string,
    env: NodeJS.ProcessEnv,
    options: AzureBlobFromUrlOptions = {},
  ): AzureBlobBackend {
    const location = parseAzureUrl(url);
    const retry = { ...AZURE_DEFAULT_RETRY, ...options.retry };
    const client = containerClientFromEnv(location, env, {
      retryOptions: {
        maxTries: retry.maxTries,
        retryDelayInMs: retry.retryDelayMs,
        maxRetryDelayInMs: retry.maxRetryDelayMs,
      },
      userAgentOptions: { userAgentPrefix: 'holdfast' },
    });
    return new AzureBlobBackend(client, { ...options, prefix: location.prefix });
  }

  /** One Put Blob, or staged blocks and one Put Block List; conditional on the publishing call. */
  async put(name: string, data: Uint8Array, options: PutOptions = {}): Promise<void> {
    assertObjectName(name);
    throwIfAborted(options.signal);
    const conditional = options.ifNotExists === true;
    // Marks this attempt, so a conditional put whose success answer was lost (the SDK then
    // retries and meets its own blob) is recognised as won rather than reported as taken.
    const token = conditional ? randomBytes(12).toString('hex') : undefined;
    const action: AzureAction = conditional ? 'conditional-write' : 'write';
    await this.#run(action, name, options.signal, data.length, async (signal) => {
      try {
        await this.#upload(name, data, token, signal);
      } catch (error) {
        if (this.#createContainer && isContainerNotFound(error)) {
          await this.#client.createIfNotExists({ abortSignal: signal });
          await this.#upload(name, data, token, signal);
          return;
        }
        if (token !== undefined && (await this.#isOwnWrite(name, token, error, signal))) return;
        throw error;
      }
    });
  }

  /** One download of the whole blob. */
  async get(name: string, options: OpOptions = {}): Promise<Buffer> {
    assertObjectName(name);
    throwIfAborted(options.signal);
    return this.#run('read', name, options.signal, 0, async (signal, deadline) => {
      const response = await this.#blob(name).download(0, undefined, { abortSignal: signal });
      deadline.extend(this.#transferMs(response.contentLength ?? 0));
      return readBody(response, name, this.location);
    });
  }

  /** One ranged download; a range starting at or past the end reads as empty. */
  async getRange(
    name: string,
    offset: number,
    length: number,
    options: OpOptions = {},
  ): Promise<Buffer> {
    assertObjectName(name);
    assertRange(offset, length);
    throwIfAborted(options.signal);
    return this.#run('read', name, options.signal, length, async (signal) => {
      const blob = this.#blob(name);
      if (length === 0) {
        // Still an existence check: a missing object must fail even for nothing.
        await blob.getProperties({ abortSignal: signal });
        return Buffer.alloc(0);
      }
      let response: BlobDownloadResponseParsed;
      try {
        response = await blob.download(offset, length, { abortSignal: signal });
      } catch (error) {
        // 416 comes only for an existing blob whose size is at most `offset`.
        if (azureErrorParts(error).status === 416) return Buffer.alloc(0);
        throw error;
      }
      const body = await readBody(response, name, this.location);
      return body.length > length ? body.subarray(0, length) : body;
    });
  }

  /** Pages through the container listing lazily, one request per page as the caller reads. */
  async *list(prefix: string, options: OpOptions = {}): AsyncGenerator<ObjectInfo> {
    assertObjectPrefix(prefix);
    throwIfAborted(options.signal);
    const full = this.#prefix + prefix;
    let continuationToken: string | undefined;
    do {
      const token = continuationToken;
      const page = await this.#run('list', prefix, options.signal, 0, async (signal) => {
        const pages = this.#client
          .listBlobsFlat({ ...(full === '' ? {} : { prefix: full }), abortSignal: signal })
          .byPage({
            maxPageSize: this.#listPageSize,
            ...(token === undefined ? {} : { continuationToken: token }),
          });
        const next = await pages.next();
        return next.done === true ? undefined : next.value;
      });
      if (page === undefined) return;
      for (const item of page.segment.blobItems) {
        throwIfAborted(options.signal);
        const name = item.name.slice(this.#prefix.length);
        // Blobs Holdfast cannot have written (a folder marker ending in "/", say) are not
        // objects: get would refuse their names.
        if (objectNameProblem(name) !== undefined) continue;
        yield { name, size: item.properties.contentLength ?? 0 };
      }
      continuationToken = page.continuationToken === '' ? undefined : page.continuationToken;
    } while (continuationToken !== undefined);
  }

  /** Get Blob Properties. */
  async stat(name: string, options: OpOptions = {}): Promise<ObjectInfo> {
    assertObjectName(name);
    throwIfAborted(options.signal);
    return this.#run('stat', name, options.signal, 0, async (signal) => {
      const properties = await this.#blob(name).getProperties({ abortSignal: signal });
      return { name, size: properties.contentLength ?? 0 };
    });
  }

  /** Delete Blob, with its snapshots (Holdfast makes none, but the service refuses otherwise). */
  async delete(name: string, options: OpOptions = {}): Promise<void> {
    assertObjectName(name);
    throwIfAborted(options.signal);
    await this.#run('delete', name, options.signal, 0, async (signal) => {
      await this.#blob(name).delete({ abortSignal: signal, deleteSnapshots: 'include' });
    });
  }

  /** Nothing to release: the SDK's HTTP agent is shared and keeps no per-backend state. */
  async close(): Promise<void> {}

  #blob(name: string) {
    return this.#client.getBlockBlobClient(this.#prefix + name);
  }

  async #upload(
    name: string,
    data: Uint8Array,
    token: string | undefined,
    signal: AbortSignal,
  ): Promise<void> {
    await this.#blob(name).uploadData(data, {
      abortSignal: signal,
      maxSingleShotSize: this.#singleShotBytes,
      blockSize: this.#blockBytes,
      concurrency: this.#uploadConcurrency,
      ...(token === undefined
        ? {}
        : { conditions: { ifNoneMatch: '*' }, metadata: { holdfastput: token } }),
    });
  }

  /** After a conditional put failed as taken: true when the blob there is this put's own. */
  async #isOwnWrite(
    name: string,
    token: string,
    error: unknown,
    signal: AbortSignal,
  ): Promise<boolean> {
    const { status } = azureErrorParts(error);
    if (status !== 409 && status !== 412) return false;
    const properties = await this.#blob(name)
      .getProperties({ abortSignal: signal })
      .catch(() => undefined);
    return properties?.metadata?.['holdfastput'] === token;
  }

  /** Runs one operation under a deadline and classifies whatever it throws. */
  async #run<T>(
    action: AzureAction,
    name: string,
    caller: AbortSignal | undefined,
    transferBytes: number,
    operation: (signal: AbortSignal, deadline: OperationDeadline) => Promise<T>,
  ): Promise<T> {
    const limitMs = this.#timeoutMs + this.#transferMs(transferBytes);
    const deadline = new OperationDeadline(caller, limitMs);
    try {
      return await operation(deadline.signal, deadline);
    } catch (error) {
      throw classifyAzureError(error, {
        action,
        name,
        location: this.location,
        cancelled: deadline.cancelled,
        ...(deadline.expired ? { timedOutAfterMs: deadline.limitMs } : {}),
      });
    } finally {
      deadline.dispose();
    }
  }

  #transferMs(bytes: number): number {
    return Math.ceil((bytes / this.#minBytesPerSecond) * 1000);
  }
}

/** Reads a download's body into one Buffer, checking it has the length the service announced. */
async function readBody(
  response: BlobDownloadResponseParsed,
  name: string,
  location: string,
): Promise<Buffer> {
  const stream = response.readableStreamBody;
  const expected = response.contentLength ?? 0;
  if (stream === undefined) {
    if (expected === 0) return Buffer.alloc(0);
    throw new HoldfastError(
      'BACKEND_IO',
      `Reading "${name}" in ${location} returned no body from the Azure SDK; retry, and report ` +
        'it if it persists.',
    );
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
    chunks.push(buffer);
    total += buffer.length;
  }
  if (total !== expected) {
    throw new HoldfastError(
      'BACKEND_TRANSIENT',
      `Reading "${name}" in ${location} ended after ${total} of ${expected} bytes; retry.`,
    );
  }
  return Buffer.concat(chunks, total);
}
