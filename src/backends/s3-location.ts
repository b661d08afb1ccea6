import { HoldfastError } from '../core/index.js';
import { objectNameProblem } from './object-name.js';

/** The form {@link parseS3Url} accepts, quoted in its error messages. */
export const S3_URL_FORM =
  's3://<bucket>/<prefix>?endpoint=<http(s)://host:port>&region=<region>&path-style=true|false' +
  '&conditional-put=true|false&object-lock=true|false (everything after the bucket is optional)';

const QUERY_KEYS = ['endpoint', 'region', 'path-style', 'conditional-put', 'object-lock'] as const;
type QueryKey = (typeof QUERY_KEYS)[number];

/** Where an S3 backend keeps its objects, without credentials. */
export interface S3Location {
  readonly bucket: string;
  /** `''` or a `/`-separated path ending in `/`; every object key starts with it. */
  readonly keyPrefix: string;
  /** An S3-compatible server's base URL; absent for AWS itself. */
  readonly endpoint?: string;
}

/** What an `s3://` URL and the environment say about a backend. */
export interface S3UrlSettings extends S3Location {
  readonly region: string;
  readonly forcePathStyle: boolean;
  readonly conditionalPut: boolean;
  /** The bucket has S3 Object Lock enabled (docs/immutability.md). */
  readonly objectLock: boolean;
  /** Static keys from the environment; absent means the SDK's default credential chain. */
  readonly credentials?: {
    readonly accessKeyId: string;
    readonly secretAccessKey: string;
    readonly sessionToken?: string;
  };
}

/**
 * Reads `s3://<bucket>/<prefix>?endpoint=…&region=…&path-style=…&conditional-put=…`. The endpoint
 * defaults to `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`, the region to `AWS_REGION` or
 * `us-east-1`, path-style to true when there is an endpoint, conditional puts to false. Keys come
 * from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`) in `env` when set;
 * otherwise the SDK's default chain finds them. Credentials in the URL itself are refused.
 * Anything malformed is USAGE_INVALID, and no message repeats a URL that may hold a secret.
 */
export function parseS3Url(url: string, env: NodeJS.ProcessEnv): S3UrlSettings {
  // Checked on the raw text too: a secret with "/" in it makes the URL unparseable.
  if (hasUserInfo(url)) throw credentialsInUrl();
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // Not echoed, and not kept as the cause: Node's URL error carries the input, secrets and all.
    throw usage('it is not a URL');
  }
  if (parsed.protocol !== 's3:') throw usage(`it starts with "${parsed.protocol}//", not "s3://"`);
  if (parsed.username !== '' || parsed.password !== '') throw credentialsInUrl();
  if (parsed.port !== '') throw usage('a bucket has no port; put the server in "endpoint="');
  if (parsed.hash !== '') throw usage('it has a "#" fragment');
  const bucket = parsed.hostname;
  const bucketProblem = s3BucketProblem(bucket);
  if (bucketProblem !== undefined) throw usage(bucketProblem);
  const keyPrefix = s3KeyPrefix(decodePath(parsed.pathname));

  const query = readQuery(parsed.searchParams);
  const endpointSource =
    query.endpoint === undefined
      ? envSource(env, 'AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL')
      : { name: '"endpoint="', value: query.endpoint };
  const endpoint =
    endpointSource === undefined
      ? undefined
      : normalizeEndpoint(endpointSource.value, endpointSource.name);
  const region = query.region ?? envSource(env, 'AWS_REGION')?.value ?? 'us-east-1';
  if (!/^[a-z0-9-]{1,64}$/i.test(region)) throw usage('the region is not a region name');
  const credentials = envCredentials(env);
  return {
    bucket,
    keyPrefix,
    ...(endpoint === undefined ? {} : { endpoint }),
    region,
    forcePathStyle: readBoolean(query, 'path-style') ?? endpoint !== undefined,
    conditionalPut: readBoolean(query, 'conditional-put') ?? false,
    objectLock: readBoolean(query, 'object-lock') ?? false,
    ...(credentials === undefined ? {} : { credentials }),
  };
}

/** Says what is wrong with a bucket name (S3's DNS-compatible rules), or `undefined`. */
export function s3BucketProblem(bucket: string): string | undefined {
  if (bucket === '') return 'the bucket name is missing';
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket) || bucket.includes('..')) {
    return (
      'the bucket name is not valid: 3 to 63 lowercase letters, digits, "." or "-", ' +
      'starting and ending with a letter or digit'
    );
  }
  return undefined;
}

/**
 * Turns a prefix such as `vaults/main` or `/vaults/main/` into the key prefix `vaults/main/`
 * (`''` stays `''`). Throws USAGE_INVALID when a segment is not allowed in object names.
 */
export function s3KeyPrefix(prefix: string): string {
  const trimmed = prefix.replace(/^\/+/, '').replace(/\/$/, '');
  if (trimmed === '') return '';
  const problem = objectNameProblem(trimmed);
  if (problem !== undefined)
    throw usage(`the prefix ${JSON.stringify(trimmed)} is invalid: ${problem}`);
  return `${trimmed}/`;
}

/**
 * Checks an endpoint URL and returns it without a trailing `/`. Refuses anything but http(s),
 * and credentials, queries or fragments, naming `source` (the query key or setting) instead of
 * echoing a value that may hold a secret.
 */
export function normalizeEndpoint(text: string, source: string): string {
  if (hasUserInfo(text)) {
    throw usage(`${source} contains credentials; set them in the environment instead`);
  }
  let endpoint: URL;
  try {
    endpoint = new URL(text);
  } catch {
    throw usage(`${source} is not a URL such as http://127.0.0.1:9000`);
  }
  if (endpoint.protocol !== 'http:' && endpoint.protocol !== 'https:') {
    throw usage(`${source} must start with http:// or https://`);
  }
  if (endpoint.username !== '' || endpoint.password !== '') {
    throw usage(`${source} contains credentials; set them in the environment instead`);
  }
  if (endpoint.search !== '' || endpoint.hash !== '') {
    throw usage(`${source} must not have a query or fragment`);
  }
  return endpoint.href.replace(/\/$/, '');
}

/**
 * The credential-free description used as a backend's `location`: `s3://bucket/prefix`, followed
 * by `?endpoint=…` for S3-compatible servers.
 */
export function describeS3Location(location: S3Location): string {
  const path = location.keyPrefix.replace(/\/$/, '');
  const base = `s3://${location.bucket}${path === '' ? '' : `/${path}`}`;
  return location.endpoint === undefined ? base : `${base}?endpoint=${location.endpoint}`;
}

function readQuery(params: URLSearchParams): Partial<Record<QueryKey, string>> {
  const query: Partial<Record<QueryKey, string>> = {};
  for (const [key, value] of params) {
    if (!(QUERY_KEYS as readonly string[]).includes(key)) {
      throw usage(`"${key}" is not a known option (known: ${QUERY_KEYS.join(', ')})`);
    }
    const known = key as QueryKey;
    if (query[known] !== undefined) throw usage(`"${key}" is given twice`);
    query[known] = value;
  }
  return query;
}

function readBoolean(
  query: Partial<Record<QueryKey, string>>,
  key: 'path-style' | 'conditional-put' | 'object-lock',
): boolean | undefined {
  const value = query[key];
  if (value === undefined) return undefined;
  if (value === 'true' || value === 'false') return value === 'true';
  throw usage(`"${key}" must be true or false`);
}

/** The first of `names` set to a non-empty value in `env`, with its name for messages. */
function envSource(
  env: NodeJS.ProcessEnv,
  ...names: string[]
): { name: string; value: string } | undefined {
  for (const name of names) {
    const value = env[name];
    if (value !== undefined && value !== '') return { name, value };
  }
  return undefined;
}

function envCredentials(env: NodeJS.ProcessEnv): S3UrlSettings['credentials'] {
  const accessKeyId = env['AWS_ACCESS_KEY_ID'] ?? '';
  const secretAccessKey = env['AWS_SECRET_ACCESS_KEY'] ?? '';
  if (accessKeyId === '' && secretAccessKey === '') return undefined;
  if (accessKeyId === '' || secretAccessKey === '') {
    throw new HoldfastError(
      'USAGE_INVALID',
      'Only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY is set. Set both, or neither to ' +
        'use an AWS credentials file or role.',
    );
  }
  const sessionToken = env['AWS_SESSION_TOKEN'] ?? '';
  return { accessKeyId, secretAccessKey, ...(sessionToken === '' ? {} : { sessionToken }) };
}

function decodePath(pathname: string): string {
  try {
    return decodeURIComponent(pathname);
  } catch (error) {
    throw usage('the prefix has a malformed %-escape', error);
  }
}

/**
 * True when the text after `scheme://` has an `@` in what would be its authority: before it
 * either a `:` (key:secret, where the secret may contain `/`) or no `/` at all (key@bucket).
 */
function hasUserInfo(url: string): boolean {
  const match = /^[a-z][a-z0-9+.-]*:\/\/([^?#]*?)@/i.exec(url);
  if (match === null) return false;
  const before = match[1] ?? '';
  return before.includes(':') || !before.includes('/');
}

function credentialsInUrl(): HoldfastError {
  return new HoldfastError(
    'USAGE_INVALID',
    'Invalid S3 URL: it contains credentials, which must never be written into a URL. Remove ' +
      'the "user:secret@" part and set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or use an ' +
      `AWS credentials file. The accepted form is ${S3_URL_FORM}.`,
  );
}

function usage(problem: string, cause?: unknown): HoldfastError {
  return new HoldfastError(
    'USAGE_INVALID',
    `Invalid S3 URL: ${problem}. The accepted form is ${S3_URL_FORM}.`,
    cause === undefined ? undefined : { cause },
  );
}
