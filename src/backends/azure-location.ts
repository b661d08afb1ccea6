import {
  AnonymousCredential,
  BlobServiceClient,
  StorageSharedKeyCredential,
  type ContainerClient,
  type StoragePipelineOptions,
} from '@azure/storage-blob';
import { HoldfastError } from '../core/index.js';
import { objectNameProblem } from './object-name.js';

/** Where a vault lives in Azure Blob Storage; no credentials, ever. */
export interface AzureLocation {
  /** Storage account name (3–24 lowercase letters and digits). */
  readonly account: string;
  /** Container name (3–63 lowercase letters, digits and single hyphens). */
  readonly container: string;
  /** Blob name prefix for every object: `''` or a valid object name followed by `/`. */
  readonly prefix: string;
}

/** The accepted form, shown in every message about a malformed location. */
export const AZURE_URL_FORM = 'azure://<account>/<container>[/<prefix>]';

/** Environment variables that carry Azure credentials, in the order they are tried. */
export const AZURE_CREDENTIAL_VARIABLES = [
  'AZURE_STORAGE_CONNECTION_STRING',
  'AZURE_STORAGE_KEY',
  'AZURE_STORAGE_SAS_TOKEN',
] as const;

const ACCOUNT = /^[a-z0-9]{3,24}$/;
const CONTAINER = /^(?=.{3,63}$)[a-z0-9]+(?:-[a-z0-9]+)*$/;

function usage(message: string, cause?: unknown): HoldfastError {
  return new HoldfastError('USAGE_INVALID', message, cause === undefined ? {} : { cause });
}

/**
 * Parses `azure://<account>/<container>[/<prefix>]`. Credentials in the URL (a user part, a SAS
 * query) are refused: they would end up in shell history, logs and the catalog. Messages never
 * echo the URL, since a mistyped one may hold a secret.
 */
export function parseAzureUrl(url: string): AzureLocation {
  const match = /^azure:\/\/([^/?#]*)(?:\/([^/?#]*))?(?:\/([^?#]*))?([?#].*)?$/i.exec(url.trim());
  if (match === null) {
    throw usage(`An Azure location must look like ${AZURE_URL_FORM}.`);
  }
  const [, authority = '', container = '', rawPrefix = '', rest] = match;
  // A key may contain "/", so a user part can reach past the first "/": any "@" is refused.
  if (url.includes('@') || authority.includes(':') || rest !== undefined) {
    throw usage(
      'Credentials do not belong in an Azure location: it has no user part, port, query or ' +
        `fragment (where a key or SAS token would go). Use ${AZURE_URL_FORM}, set ` +
        `${AZURE_CREDENTIAL_VARIABLES.join(', ')} in the environment, and ` +
        "AZURE_STORAGE_BLOB_ENDPOINT for an endpoint other than Azure's own.",
    );
  }
  if (!ACCOUNT.test(authority)) {
    throw usage(
      `The account in an Azure location (${AZURE_URL_FORM}) must be 3–24 lowercase letters ` +
        'and digits, as in the storage account name.',
    );
  }
  if (!CONTAINER.test(container)) {
    throw usage(
      `The container in an Azure location (${AZURE_URL_FORM}) must be 3–63 lowercase letters, ` +
        'digits and single hyphens, starting and ending with a letter or digit.',
    );
  }
  return { account: authority, container, prefix: parseAzurePrefix(rawPrefix) };
}

/**
 * Normalises a blob name prefix: `''` stays empty, anything else must be a valid object name
 * (one trailing `/` allowed) and comes back ending in `/`.
 */
export function parseAzurePrefix(raw: string): string {
  const prefix = raw.endsWith('/') ? raw.slice(0, -1) : raw;
  if (prefix === '') return '';
  const problem = objectNameProblem(prefix);
  if (problem !== undefined) {
    throw usage(
      `The prefix in an Azure location (${AZURE_URL_FORM}) is invalid: ${problem}. It is a ` +
        '"/"-separated path such as "backups/host1".',
    );
  }
  return `${prefix}/`;
}

/** `azure://account/container[/prefix]`: the location as shown in messages, never with secrets. */
export function formatAzureLocation(location: AzureLocation): string {
  const base = `azure://${location.account}/${location.container}`;
  return location.prefix === '' ? base : `${base}/${location.prefix.slice(0, -1)}`;
}

/**
 * A client for the location's container with credentials from the environment, tried in order:
 * `AZURE_STORAGE_CONNECTION_STRING` (which must be for the location's account; its BlobEndpoint
 * may point at an emulator), `AZURE_STORAGE_KEY` (the account key of the location's account),
 * `AZURE_STORAGE_SAS_TOKEN`. The last two go to `AZURE_STORAGE_BLOB_ENDPOINT` when it is set,
 * and to `https://<account>.blob.core.windows.net` otherwise.
 */
export function containerClientFromEnv(
  location: AzureLocation,
  env: NodeJS.ProcessEnv,
  pipeline: StoragePipelineOptions,
): ContainerClient {
  const shown = formatAzureLocation(location);
  const connectionString = nonEmpty(env['AZURE_STORAGE_CONNECTION_STRING']);
  if (connectionString !== undefined) {
    return fromConnectionString(connectionString, location, shown, pipeline);
  }
  const key = nonEmpty(env['AZURE_STORAGE_KEY']);
  const sas = nonEmpty(env['AZURE_STORAGE_SAS_TOKEN']);
  if (key === undefined && sas === undefined) {
    throw usage(
      `No Azure credentials for ${shown}: set AZURE_STORAGE_CONNECTION_STRING, or ` +
        `AZURE_STORAGE_KEY (an account key of "${location.account}"), or AZURE_STORAGE_SAS_TOKEN.`,
    );
  }
  const endpoint = blobEndpoint(env, location.account);
  const service =
    key !== undefined
      ? new BlobServiceClient(
          endpoint,
          new StorageSharedKeyCredential(location.account, key),
          pipeline,
        )
      : new BlobServiceClient(
          `${endpoint}?${sas!.replace(/^\?/, '')}`,
          new AnonymousCredential(),
          pipeline,
        );
  return service.getContainerClient(location.container);
}

function fromConnectionString(
  connectionString: string,
  location: AzureLocation,
  shown: string,
  pipeline: StoragePipelineOptions,
): ContainerClient {
  let service: BlobServiceClient;
  try {
    service = BlobServiceClient.fromConnectionString(connectionString, pipeline);
  } catch (error) {
    throw usage(
      'AZURE_STORAGE_CONNECTION_STRING is not a valid connection string: it needs AccountName ' +
        'and AccountKey (or SharedAccessSignature) and a BlobEndpoint or EndpointSuffix. Copy ' +
        "it from the storage account's access keys.",
      error,
    );
  }
  if (service.accountName !== '' && service.accountName !== location.account) {
    throw usage(
      `AZURE_STORAGE_CONNECTION_STRING is for storage account "${service.accountName}", but the ` +
        `location ${shown} is in account "${location.account}". Use that account's connection ` +
        'string, or correct the location.',
    );
  }
  return service.getContainerClient(location.container);
}

function blobEndpoint(env: NodeJS.ProcessEnv, account: string): string {
  const given = nonEmpty(env['AZURE_STORAGE_BLOB_ENDPOINT']);
  if (given === undefined) return `https://${account}.blob.core.windows.net`;
  let url: URL;
  try {
    url = new URL(given);
  } catch (error) {
    throw usage(
      'AZURE_STORAGE_BLOB_ENDPOINT is not a URL; it looks like ' +
        'https://<account>.blob.core.windows.net (or http://127.0.0.1:10000/<account> for Azurite).',
      error,
    );
  }
  if (
    (url.protocol !== 'https:' && url.protocol !== 'http:') ||
    url.search !== '' ||
    url.hash !== '' ||
    url.username !== '' ||
    url.password !== ''
  ) {
    throw usage(
      'AZURE_STORAGE_BLOB_ENDPOINT must be a plain http(s) URL without a query or user part; ' +
        'put a SAS token in AZURE_STORAGE_SAS_TOKEN.',
    );
  }
  return given.replace(/\/+$/, '');
}

function nonEmpty(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed === undefined || trimmed === '' ? undefined : trimmed;
}
