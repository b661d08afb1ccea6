import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  PutObjectRetentionCommand,
  S3Client,
  type GetObjectCommandOutput,
  type HeadObjectCommandOutput,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { HoldfastError, throwIfAborted } from '../core/index.js';
import type {
  Backend,
  BackendCapabilities,
  ObjectInfo,
  OpOptions,
  PutOptions,
  RetentionOptions,
} from './backend.js';
import {
  assertObjectName,
  assertObjectPrefix,
  assertRange,
  objectNameProblem,
} from './object-name.js';
import { classifyS3Error, s3ErrorMatches, type S3ErrorContext } from './s3-errors.js';
import {
  describeS3Location,
  normalizeEndpoint,
  parseS3Url,
  s3BucketProblem,
  s3KeyPrefix,
} from './s3-location.js';
import { putMultipart, sendOptions } from './s3-multipart.js';

const MIB = 1024 * 1024;

/** Defaults of {@link S3BackendConfig}'s tuning fields. */
export const S3_BACKEND_DEFAULTS = Object.freeze({
  /** Packs are ~16 MiB and go up in one PUT; only unusually large objects are split. */
  multipartThreshold: 64 * MIB,
  partSize: 16 * MIB,
  partConcurrency: 4,
  /** S3's own maximum page. */
  listPageSize: 1000,
  connectionTimeoutMs: 10_000,
  /** No byte in either direction for this long fails the call with BACKEND_TRANSIENT. */
  socketTimeoutMs: 120_000,
});

/** How to reach a bucket. `S3Backend.fromUrl` builds one from an `s3://` URL. */
export interface S3BackendConfig {
  readonly bucket: string;
  /** Key prefix under which all objects live (`vaults/main` → keys `vaults/main/…`); default none. */
  readonly prefix?: string;
  /** An S3-compatible server's base URL (`http://127.0.0.1:9000`); omit for AWS. */
  readonly endpoint?: string;
  /** Default `us-east-1`. */
  readonly region?: string;
  /** Address buckets as `endpoint/bucket/key`; default true with an endpoint, else false. */
  readonly forcePathStyle?: boolean;
  /** Keys or a provider; omitted, the SDK's default chain (environment, credentials file, role). */
  readonly credentials?: S3ClientConfig['credentials'];
  /**
   * The server honours `If-None-Match: *` on PUT and CompleteMultipartUpload (AWS S3 since 2024,
   * MinIO, …). Default false: `ifNotExists` then checks with HEAD first, which is not atomic.
   */
  readonly conditionalPut?: boolean;
  /**
   * The bucket was created with S3 Object Lock (which needs versioning): `extendRetention` sets
   * object retention. Default false.
   */
  readonly objectLock?: boolean;
  /** Objects larger than this many bytes go up as a multipart upload. */
  readonly multipartThreshold?: number;
  /** Part size for multipart uploads; S3 needs at least 5 MiB for all parts but the last. */
  readonly partSize?: number;
  readonly partConcurrency?: number;
  /** Keys per ListObjectsV2 page, 1 to 1000. */
  readonly listPageSize?: number;
  /**
   * Further SDK client options, applied last. Tests against s3rver set
   * `requestChecksumCalculation` and `responseChecksumValidation` to `'WHEN_REQUIRED'`; production
   * keeps the SDK's defaults, which send and check CRC32 checksums. A `logger` is ignored: the
   * SDK logs failed calls with the server's raw answer, which may echo the access key id.
   */
  readonly clientOptions?: Omit<
    S3ClientConfig,
    'endpoint' | 'region' | 'forcePathStyle' | 'credentials' | 'logger'
  >;
}

/**
 * A backend on an S3 bucket (AWS or S3-compatible): each object is the key `prefix + name`.
 * A PUT is atomic and durable when acknowledged; larger objects use a multipart upload, which
 * becomes visible only when completed. S3 has listed consistently since December 2020, so
 * `consistentList` holds. Errors are classified in `s3-errors.ts`; messages and `location` never
 * contain credentials. The SDK's own retries are off by default (`maxAttempts: 1`): retrying is
 * a wrapper's job, and BACKEND_TRANSIENT tells it when.
 */
export class S3Backend implements Backend {
  /** Range reads and consistent listings always; conditional puts only when configured. */
  readonly capabilities: BackendCapabilities;

  /** `s3://bucket/prefix`, plus `?endpoint=…` for S3-compatible servers. */
  readonly location: string;

  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #keyPrefix: string;
  readonly #multipartThreshold: number;
  readonly #partSize: number;
  readonly #partConcurrency: number;
  readonly #listPageSize: number;

  /**
   * Parses `s3://<bucket>/<prefix>?endpoint=…&region=…&path-style=…&conditional-put=…` (see
   * `parseS3Url`). Keys come from `env` or the SDK's default chain, never from the URL; a bad
   * URL is USAGE_INVALID with the accepted form in the message.
   */
  static fromUrl(url: string, env: NodeJS.ProcessEnv): S3Backend {
    const settings = parseS3Url(url, env);
    return new S3Backend({
      bucket: settings.bucket,
      prefix: settings.keyPrefix,
      ...(settings.endpoint === undefined ? {} : { endpoint: settings.endpoint }),
      region: settings.region,
      forcePathStyle: settings.forcePathStyle,
      conditionalPut: settings.conditionalPut,
      objectLock: settings.objectLock,
      ...(settings.credentials === undefined ? {} : { credentials: settings.credentials }),
    });
  }

  /** Checks `config` (USAGE_INVALID when wrong) and creates the client; no request is made. */
  constructor(config: S3BackendConfig) {
    const bucketProblem = s3BucketProblem(config.bucket);
    if (bucketProblem !== undefined) {
      throw new HoldfastError(
        'USAGE_INVALID',
        `Invalid S3 backend configuration: ${bucketProblem}.`,
      );
    }
    const endpoint =
      config.endpoint === undefined ? undefined : normalizeEndpoint(config.endpoint, 'endpoint');
    this.#bucket = config.bucket;
    this.#keyPrefix = s3KeyPrefix(config.prefix ?? '');
    this.#multipartThreshold = positive(config, 'multipartThreshold');
    this.#partSize = positive(config, 'partSize');
    this.#partConcurrency = positive(config, 'partConcurrency');
    this.#listPageSize = Math.min(positive(config, 'listPageSize'), 1000);
    this.location = describeS3Location({
      bucket: this.#bucket,
      keyPrefix: this.#keyPrefix,
      ...(endpoint === undefined ? {} : { endpoint }),
    });
    this.capabilities = Object.freeze({
      conditionalPut: config.conditionalPut ?? false,
      rangeReads: true,
      consistentList: true,
      objectLock: config.objectLock ?? false,
    });
    this.#client = new S3Client({
      maxAttempts: 1,
      requestHandler: {
        connectionTimeout: S3_BACKEND_DEFAULTS.connectionTimeoutMs,
        socketTimeout: S3_BACKEND_DEFAULTS.socketTimeoutMs,
      },
      ...withoutLogger(config.clientOptions),
      region: config.region ?? 'us-east-1',
      forcePathStyle: config.forcePathStyle ?? endpoint !== undefined,
      ...(endpoint === undefined ? {} : { endpoint }),
      ...(config.credentials === undefined ? {} : { credentials: ownCopy(config.credentials) }),
    });
  }

  /**
   * One PUT, or a multipart upload above the threshold. With `ifNotExists` and `conditionalPut`
   * the server refuses atomically (`If-None-Match: *`); without it a HEAD checks first, so two
   * racing writers can both succeed (the capability says so).
   */
  async put(name: string, data: Uint8Array, options: PutOptions = {}): Promise<void> {
    assertObjectName(name);
    const { signal } = options;
    throwIfAborted(signal);
    const Key = this.#key(name);
    const atomic = options.ifNotExists === true && this.capabilities.conditionalPut;
    try {
      if (options.ifNotExists === true && !atomic && (await this.#exists(Key, signal))) {
        throw new HoldfastError(
          'BACKEND_EXISTS',
          `Object "${name}" already exists in ${this.location}; it was left unchanged.`,
        );
      }
      throwIfAborted(signal);
      if (data.length > this.#multipartThreshold) {
        await putMultipart({
          client: this.#client,
          bucket: this.#bucket,
          key: Key,
          name,
          location: this.location,
          data,
          partSize: this.#partSize,
          concurrency: this.#partConcurrency,
          ifNoneMatch: atomic,
          checksums: (await this.#client.config.requestChecksumCalculation()) === 'WHEN_SUPPORTED',
          signal,
        });
        return;
      }
      const Body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      const IfNoneMatch = atomic ? '*' : undefined;
      await this.#client.send(
        new PutObjectCommand({
          Bucket: this.#bucket,
          Key,
          Body,
          ContentLength: Body.length,
          IfNoneMatch,
        }),
        sendOptions(signal),
      );
    } catch (error) {
      throw await this.#fail(error, { action: 'write', name, conditional: atomic, signal });
    }
  }

  /** One GET of the whole object. */
  async get(name: string, options: OpOptions = {}): Promise<Buffer> {
    assertObjectName(name);
    const { signal } = options;
    throwIfAborted(signal);
    try {
      const output = await this.#client.send(
        new GetObjectCommand({ Bucket: this.#bucket, Key: this.#key(name) }),
        sendOptions(signal),
      );
      return await readBody(output);
    } catch (error) {
      throw await this.#fail(error, { action: 'read', name, signal });
    }
  }

  /**
   * One ranged GET. A range starting at or past the end (416, or a `Content-Range` whose total
   * says so) reads as empty; a server that ignores `Range` still yields the right bytes.
   * A zero-length range only checks that the object exists.
   */
  async getRange(
    name: string,
    offset: number,
    length: number,
    options: OpOptions = {},
  ): Promise<Buffer> {
    assertObjectName(name);
    assertRange(offset, length);
    const { signal } = options;
    throwIfAborted(signal);
    if (length === 0) {
      await this.stat(name, options);
      return Buffer.alloc(0);
    }
    const last = Math.min(offset + length - 1, Number.MAX_SAFE_INTEGER);
    try {
      const output = await this.#client.send(
        new GetObjectCommand({
          Bucket: this.#bucket,
          Key: this.#key(name),
          Range: `bytes=${offset}-${last}`,
        }),
        sendOptions(signal),
      );
      const total = rangeTotal(output.ContentRange);
      if (total !== undefined && offset >= total) {
        // Some servers (s3rver) answer a range on an empty object with a body they never send.
        discardBody(output);
        return Buffer.alloc(0);
      }
      const bytes = await readBody(output);
      if (output.ContentRange === undefined) {
        // The whole object came back: the server ignored the range.
        return Buffer.from(bytes.subarray(offset, offset + length));
      }
      return bytes.length > length ? bytes.subarray(0, length) : bytes;
    } catch (error) {
      if (s3ErrorMatches(error, 'InvalidRange', 416)) return Buffer.alloc(0);
      throw await this.#fail(error, { action: 'read', name, signal });
    }
  }

  /**
   * Pages through ListObjectsV2 lazily, one request per page when the caller asks for more.
   * Keys under the prefix that are not valid object names (folder markers such as `dir/`,
   * objects other tools put there) are skipped.
   */
  async *list(prefix: string, options: OpOptions = {}): AsyncGenerator<ObjectInfo> {
    assertObjectPrefix(prefix);
    const { signal } = options;
    throwIfAborted(signal);
    const Prefix = this.#keyPrefix + prefix;
    let ContinuationToken: string | undefined;
    do {
      const page = await this.#client
        .send(
          new ListObjectsV2Command({
            Bucket: this.#bucket,
            ...(Prefix === '' ? {} : { Prefix }),
            MaxKeys: this.#listPageSize,
            ContinuationToken,
          }),
          sendOptions(signal),
        )
        .catch(async (error: unknown) => {
          throw await this.#fail(error, {
            action: 'list',
            name: prefix === '' ? '/' : prefix,
            signal,
          });
        });
      for (const item of page.Contents ?? []) {
        const key = item.Key ?? '';
        const name = key.slice(this.#keyPrefix.length);
        if (!key.startsWith(Prefix) || objectNameProblem(name) !== undefined) continue;
        throwIfAborted(signal);
        yield { name, size: item.Size ?? 0 };
      }
      ContinuationToken = page.IsTruncated === true ? page.NextContinuationToken : undefined;
      if (page.IsTruncated === true && ContinuationToken === undefined) {
        throw new HoldfastError(
          'BACKEND_IO',
          `Listing "${prefix}" in ${this.location} stopped: the server said more keys follow ` +
            'but gave no continuation token. The server is not S3-compatible enough.',
        );
      }
    } while (ContinuationToken !== undefined);
  }

  /** One HEAD. */
  async stat(name: string, options: OpOptions = {}): Promise<ObjectInfo> {
    assertObjectName(name);
    const { signal } = options;
    throwIfAborted(signal);
    try {
      const output = await this.#client.send(
        new HeadObjectCommand({ Bucket: this.#bucket, Key: this.#key(name) }),
        sendOptions(signal),
      );
      const until = output.ObjectLockRetainUntilDate?.getTime();
      return { name, size: output.ContentLength ?? 0, ...(until ? { retainUntil: until } : {}) };
    } catch (error) {
      throw await this.#fail(error, { action: 'read', name, signal });
    }
  }

  /**
   * HEAD, then DELETE: S3 deletes idempotently and would report success for a missing object.
   * The pair is not atomic. If another writer deletes the object in between, both deletes
   * succeed; if another writer replaces it in between, the new version is deleted. Holdfast
   * deletes only objects nothing else writes any more (pruned packs, old indexes, released
   * locks), so neither race changes an outcome.
   */
  async delete(name: string, options: OpOptions = {}): Promise<void> {
    assertObjectName(name);
    const { signal } = options;
    throwIfAborted(signal);
    const Key = this.#key(name);
    try {
      await this.#client.send(
        new HeadObjectCommand({ Bucket: this.#bucket, Key }),
        sendOptions(signal),
      );
      throwIfAborted(signal);
      await this.#client.send(
        new DeleteObjectCommand({ Bucket: this.#bucket, Key }),
        sendOptions(signal),
      );
    } catch (error) {
      throw await this.#fail(error, { action: 'delete', name, signal });
    }
  }

  /**
   * HEAD, then PutObjectRetention when the object's lock ends before `until`. S3 refuses to
   * shorten a lock or to weaken COMPLIANCE to GOVERNANCE, so the mode only ever goes up.
   */
  async extendRetention(name: string, until: number, options: RetentionOptions): Promise<void> {
    assertObjectName(name);
    const { signal } = options;
    if (!this.capabilities.objectLock)
      throw new HoldfastError('INTERNAL', `${this.location} was not opened with object-lock=true.`);
    throwIfAborted(signal);
    const Key = this.#key(name);
    let head: HeadObjectCommandOutput;
    try {
      head = await this.#client.send(
        new HeadObjectCommand({ Bucket: this.#bucket, Key }),
        sendOptions(signal),
      );
    } catch (error) {
      throw await this.#fail(error, { action: 'read', name, signal });
    }
    try {
      const current = head.ObjectLockRetainUntilDate?.getTime() ?? 0;
      const compliance = head.ObjectLockMode === 'COMPLIANCE' || options.mode === 'compliance';
      if (current >= until && (!compliance || head.ObjectLockMode === 'COMPLIANCE')) return;
      await this.#client.send(
        new PutObjectRetentionCommand({
          Bucket: this.#bucket,
          Key,
          Retention: {
            Mode: compliance ? 'COMPLIANCE' : 'GOVERNANCE',
            RetainUntilDate: new Date(Math.max(current, until)),
          },
        }),
        sendOptions(signal),
      );
    } catch (error) {
      throw await this.#fail(error, { action: 'write', name, signal });
    }
  }

  /** Closes the client's connections. */
  async close(): Promise<void> {
    this.#client.destroy();
  }

  #key(name: string): string {
    return this.#keyPrefix + name;
  }

  async #exists(Key: string, signal: AbortSignal | undefined): Promise<boolean> {
    try {
      await this.#client.send(
        new HeadObjectCommand({ Bucket: this.#bucket, Key }),
        sendOptions(signal),
      );
      return true;
    } catch (error) {
      if (s3ErrorMatches(error, 'NotFound', 404)) return false;
      throw error;
    }
  }

  /** Classifies `error`, blanking the credentials out of whatever the server echoed. */
  async #fail(
    error: unknown,
    context: Omit<S3ErrorContext, 'location' | 'secrets'>,
  ): Promise<HoldfastError> {
    let secrets: string[] = [];
    if (!(error instanceof HoldfastError) && !s3ErrorMatches(error, 'CredentialsProviderError')) {
      try {
        const identity = await this.#client.config.credentials();
        secrets = [identity.accessKeyId, identity.secretAccessKey, identity.sessionToken ?? ''];
      } catch {
        // No credentials resolve, so none can have been echoed.
      }
    }
    return classifyS3Error(error, { ...context, location: this.location, secrets });
  }
}

function withoutLogger(options: S3BackendConfig['clientOptions']): S3ClientConfig {
  const { logger: _ignored, ...rest } = (options ?? {}) as S3ClientConfig;
  return rest;
}

/** Static keys are copied: the SDK annotates the object it is given, which may be frozen. */
function ownCopy(
  credentials: NonNullable<S3ClientConfig['credentials']>,
): NonNullable<S3ClientConfig['credentials']> {
  return typeof credentials === 'function' ? credentials : { ...credentials };
}

function positive(
  config: S3BackendConfig,
  field: 'multipartThreshold' | 'partSize' | 'partConcurrency' | 'listPageSize',
): number {
  const value = config[field] ?? S3_BACKEND_DEFAULTS[field];
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new HoldfastError(
      'USAGE_INVALID',
      `Invalid S3 backend configuration: ${field} must be a positive integer, not ${value}.`,
    );
  }
  return value;
}

/** The body as a Buffer over the SDK's fresh array (no copy, and no one else holds it). */
async function readBody(output: GetObjectCommandOutput): Promise<Buffer> {
  if (output.Body === undefined) return Buffer.alloc(0);
  const bytes = await output.Body.transformToByteArray();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function discardBody(output: GetObjectCommandOutput): void {
  const body = output.Body as { destroy?: () => void } | undefined;
  body?.destroy?.();
}

/** The object size from `Content-Range: bytes a-b/total`, when the server gave one. */
function rangeTotal(contentRange: string | undefined): number | undefined {
  const match = /\/(\d+)\s*$/.exec(contentRange ?? '');
  return match === null ? undefined : Number(match[1]);
}
