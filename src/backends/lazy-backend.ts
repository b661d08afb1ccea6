import type { AzureBlobFromUrlOptions } from './azure-blob-backend.js';
import { formatAzureLocation, parseAzureUrl } from './azure-location.js';
import type {
  Backend,
  BackendCapabilities,
  ObjectInfo,
  OpOptions,
  PutOptions,
  RetentionOptions,
} from './backend.js';
import { requireRetention } from './retention.js';
import { describeS3Location, parseS3Url } from './s3-location.js';

/**
 * A backend whose implementation is loaded when it is first used. Each object-store SDK takes
 * several hundred milliseconds to load, and most commands never touch one: a location is parsed
 * at once (a malformed one fails when opened, as before), and the SDK is loaded by the first
 * operation, with the environment as it was when the location was opened. `location` and
 * `capabilities` are known up front and are those of the backend loaded later. `close` before
 * any operation loads nothing.
 */
export class LazyBackend implements Backend {
  readonly location: string;
  readonly capabilities: BackendCapabilities;

  readonly #load: () => Promise<Backend>;
  #loaded: Promise<Backend> | undefined;

  constructor(location: string, capabilities: BackendCapabilities, load: () => Promise<Backend>) {
    this.location = location;
    this.capabilities = Object.freeze({ ...capabilities });
    this.#load = load;
  }

  /** The backend, loaded by the first call; a failed load fails every operation the same way. */
  #backend(): Promise<Backend> {
    this.#loaded ??= this.#load();
    return this.#loaded;
  }

  async put(name: string, data: Uint8Array, options?: PutOptions): Promise<void> {
    return (await this.#backend()).put(name, data, options);
  }

  async get(name: string, options?: OpOptions): Promise<Buffer> {
    return (await this.#backend()).get(name, options);
  }

  async getRange(
    name: string,
    offset: number,
    length: number,
    options?: OpOptions,
  ): Promise<Buffer> {
    return (await this.#backend()).getRange(name, offset, length, options);
  }

  async *list(prefix: string, options?: OpOptions): AsyncIterable<ObjectInfo> {
    yield* (await this.#backend()).list(prefix, options);
  }

  async stat(name: string, options?: OpOptions): Promise<ObjectInfo> {
    return (await this.#backend()).stat(name, options);
  }

  async delete(name: string, options?: OpOptions): Promise<void> {
    return (await this.#backend()).delete(name, options);
  }

  async extendRetention(name: string, until: number, options: RetentionOptions): Promise<void> {
    return requireRetention(await this.#backend())(name, until, options);
  }

  async close(): Promise<void> {
    if (this.#loaded === undefined) return;
    let backend: Backend;
    try {
      backend = await this.#loaded;
    } catch {
      return; // never loaded: nothing to release
    }
    await backend.close();
  }
}

/**
 * `S3Backend.fromUrl(url, env)`, with the AWS SDK loaded on first use. The URL and the keys in
 * `env` are checked now, so a malformed location fails here with the same USAGE_INVALID.
 */
export function lazyS3Backend(url: string, env: NodeJS.ProcessEnv): LazyBackend {
  const settings = parseS3Url(url, env);
  const opened = { ...env };
  return new LazyBackend(
    describeS3Location(settings),
    {
      conditionalPut: settings.conditionalPut,
      rangeReads: true,
      consistentList: true,
      objectLock: settings.objectLock,
    },
    async () => (await import('./s3-backend.js')).S3Backend.fromUrl(url, opened),
  );
}

/**
 * `AzureBlobBackend.fromUrl(url, env, options)`, with the Azure SDK loaded on first use. The URL
 * is checked now (USAGE_INVALID, as before); the credentials in `env` are read by the SDK's
 * client, so missing or malformed ones fail the first operation with the same USAGE_INVALID.
 */
export function lazyAzureBackend(
  url: string,
  env: NodeJS.ProcessEnv,
  options: AzureBlobFromUrlOptions = {},
): LazyBackend {
  const location = parseAzureUrl(url);
  const opened = { ...env };
  return new LazyBackend(
    formatAzureLocation(location),
    { conditionalPut: true, rangeReads: true, consistentList: true, objectLock: false },
    async () =>
      (await import('./azure-blob-backend.js')).AzureBlobBackend.fromUrl(url, opened, options),
  );
}
