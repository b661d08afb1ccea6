import { resolve } from 'node:path';
import {
  AZURE_URL_FORM,
  lazyAzureBackend,
  lazyS3Backend,
  LocalBackend,
  S3_URL_FORM,
  SERVER_URL_FORM,
  ServerBackend,
  stackBackend,
  timerSleep,
  type Backend,
  type BackendCounters,
} from '../backends/index.js';
import { HoldfastError, systemClock } from '../core/index.js';
import { describeError } from '../core/index.js';
import {
  indexPacksFromHeaders,
  Vault,
  type Credential,
  type VaultConfig,
  type VaultOptions,
} from '../engine/index.js';

/** How {@link openBackend} opens a location. */
export interface OpenBackendOptions {
  /** Create the container or bucket prefix if missing (vault creation, a new secondary). */
  readonly create?: boolean;
  /** Where credentials of object stores come from (default: the process environment). */
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * Turns a vault location into a backend: a directory path (or `file://` URL), or
 * `azure://<account>/<container>/<prefix>` or `s3://<bucket>/<prefix>` with credentials from the
 * environment, or `http(s)://<server>/vaults/<name>` through a Holdfast server with an API token.
 * Remote backends are used through the retry, limit and counting wrappers; an object store's
 * SDK is loaded by the first operation, not here.
 */
export function openBackend(location: string, options: OpenBackendOptions = {}): Backend {
  if (location.trim() === '') {
    throw new HoldfastError(
      'USAGE_INVALID',
      'No vault given: pass --vault <dir> or set HOLDFAST_VAULT.',
    );
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(location)?.[1]?.toLowerCase();
  if (scheme === undefined) return new LocalBackend(resolve(location));
  if (scheme === 'file') return new LocalBackend(decodeURIComponent(new URL(location).pathname));
  const env = options.env ?? process.env;
  // The SDKs load when the backend is first used; the location is checked now.
  if (scheme === 'azure')
    return remote(lazyAzureBackend(location, env, { createContainer: options.create === true }));
  if (scheme === 's3') return remote(lazyS3Backend(location, env));
  if (scheme === 'http' || scheme === 'https') return remote(ServerBackend.fromUrl(location, env));
  throw new HoldfastError(
    'USAGE_INVALID',
    `Vault locations of type ${scheme}:// are not supported; use a directory, ${AZURE_URL_FORM}, ${S3_URL_FORM} or ${SERVER_URL_FORM}.`,
  );
}

// The counters of every object-store backend this process opened, for traffic reports.
const remoteCounters: BackendCounters[] = [];

// The SDKs retry a little themselves; this adds retries across longer outages, bounded
// requests in flight and counters, the same for every object store.
function remote(backend: Backend): Backend {
  const stacked = stackBackend(backend, {
    random: Math.random,
    sleep: timerSleep,
    clock: systemClock,
    retry: { maxAttempts: 5 },
  });
  remoteCounters.push(stacked.counters);
  return stacked;
}

/** Requests and bytes this process sent to object storage, summed over every location. */
export interface RemoteTraffic {
  readonly requests: number;
  readonly byOperation: Record<string, number>;
  readonly bytesWritten: number;
  readonly bytesRead: number;
  readonly retries: number;
  readonly failures: number;
}

/** What {@link openBackend} has counted so far (`HOLDFAST_BACKEND_STATS`, the benchmark). */
export function remoteTraffic(): RemoteTraffic {
  const byOperation: Record<string, number> = {};
  let bytesWritten = 0;
  let bytesRead = 0;
  let retries = 0;
  let failures = 0;
  for (const c of remoteCounters) {
    for (const [op, n] of Object.entries(c.requests)) byOperation[op] = (byOperation[op] ?? 0) + n;
    for (const n of Object.values(c.failures)) failures += n ?? 0;
    bytesWritten += c.bytesWritten;
    bytesRead += c.bytesRead;
    retries += c.retries;
  }
  const requests = Object.values(byOperation).reduce((a, b) => a + b, 0);
  return { requests, byOperation, bytesWritten, bytesRead, retries, failures };
}

/** A location as the catalog keeps it: URLs as given, directory paths made absolute. */
export function normalizeLocation(location: string): string {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(location) ? location : resolve(location);
}

/** Opens an existing vault and loads its index. */
export async function openVault(
  location: string,
  credential: Credential,
  options: VaultOptions & { loadIndex?: boolean } = {},
): Promise<Vault> {
  // `check` loads the index itself, so that a damaged index file is reported, not fatal.
  const vault = await Vault.open(openBackend(location), credential, options);
  if (options.loadIndex !== false) await vault.loadIndex();
  return vault;
}

/**
 * Loads the index of a vault opened without it, for work that only reads (restore, browsing,
 * copying out): a damaged index file is reported through `warn` and skipped, and the packs it
 * listed are found again through their own headers, so that what is intact stays readable.
 * Work that changes the vault loads the index strictly instead: prune would take the packs of
 * a skipped index file for unused ones.
 */
export async function loadIndexForReading(
  vault: Vault,
  warn: (message: string) => void,
  signal?: AbortSignal,
): Promise<void> {
  let damaged = 0;
  await vault.loadIndex({
    ...(signal ? { signal } : {}),
    onDamage: (name, error) => {
      damaged += 1;
      warn(
        `index ${name.slice(0, 12)} is damaged and was skipped: ${describeError(error)} Run 'holdfast check'.`,
      );
    },
  });
  if (damaged === 0) return;
  const found = await indexPacksFromHeaders(vault, {
    ...(signal ? { signal } : {}),
    onDamage: (pack, error) =>
      warn(`pack ${pack.slice(0, 12)}: header unreadable: ${describeError(error)}`),
  });
  warn(`read the headers of ${found.recovered} packs no intact index lists (${found.blobs} blobs)`);
}

/** Creates a vault at a location. */
export async function createVault(
  location: string,
  credential: Credential,
  options: VaultOptions & { config?: VaultConfig } = {},
): Promise<Vault> {
  return Vault.init(openBackend(location, { create: true }), credential, options);
}
