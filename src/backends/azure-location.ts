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
