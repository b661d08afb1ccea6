import {
  AnonymousCredential,
  BlobServiceClient,
  StorageSharedKeyCredential,
  type ContainerClient,
  type StoragePipelineOptions,
} from '@azure/storage-blob';
import { HoldfastError } from '../core/index.js';
import { formatAzureLocation, type AzureLocation } from './azure-location.js';

// The SDK's clients live here, apart from azure-location.ts, so that parsing a location does not
// load the SDK (lazy-backend.ts loads it when a backend is first used).

function usage(message: string, cause?: unknown): HoldfastError {
  return new HoldfastError('USAGE_INVALID', message, cause === undefined ? {} : { cause });
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
