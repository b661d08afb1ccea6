import { readFile } from 'node:fs/promises';
import { adminTokenPath, defaultDataDir, DEFAULT_LISTEN } from '../app/direct.js';
import { HoldfastError } from '../core/index.js';
import type { ServerAccess } from './api-transport.js';

/** Options that say where the server is and which token to use. */
export interface ServerAccessOptions {
  readonly server?: string | undefined;
  readonly tokenFile?: string | undefined;
  readonly dataDir?: string | undefined;
}

/**
 * The server's base URL: `--server`, else HOLDFAST_SERVER, else the default listen address.
 * `host:port` without a scheme means `http://host:port`.
 */
export function serverUrl(option: string | undefined, env = process.env): string {
  const given = option ?? (env['HOLDFAST_SERVER'] || `http://${DEFAULT_LISTEN}`);
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(given) ? given : `http://${given}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new HoldfastError(
      'USAGE_INVALID',
      `'${given}' is not a server URL: give one like http://127.0.0.1:8440 (--server or HOLDFAST_SERVER).`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new HoldfastError('USAGE_INVALID', `The server URL must use http or https: '${given}'.`);
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

/**
 * Where the server is and the token to send: HOLDFAST_TOKEN, else the file named by
 * `--token-file`, else `<data-dir>/admin.token` when it exists and can be read. Without any, no
 * token is sent, and an AUTH_REQUIRED answer says where the CLI looked.
 */
export async function serverAccess(
  options: ServerAccessOptions,
  env = process.env,
): Promise<ServerAccess> {
  const url = serverUrl(options.server, env);
  const fromEnv = env['HOLDFAST_TOKEN'];
  if (fromEnv !== undefined && fromEnv !== '') {
    return { url, token: fromEnv.trim(), tokenSource: 'HOLDFAST_TOKEN' };
  }
  if (options.tokenFile !== undefined) {
    const token = await readTokenFile(options.tokenFile);
    if (token === '') {
      throw new HoldfastError('USAGE_INVALID', `The token file ${options.tokenFile} is empty.`);
    }
    return { url, token, tokenSource: `the token file ${options.tokenFile}` };
  }
  const adminFile = adminTokenPath(options.dataDir ?? defaultDataDir(env));
  try {
    const token = (await readFile(adminFile, 'utf8')).trim();
    if (token !== '') return { url, token, tokenSource: `the admin token file ${adminFile}` };
    return { url, token: undefined, tokenSource: `none (${adminFile} is empty)` };
  } catch (error) {
    const reason =
      (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : 'cannot be read';
    return {
      url,
      token: undefined,
      tokenSource: `none (HOLDFAST_TOKEN is not set, no --token-file, and ${adminFile} ${reason})`,
    };
  }
}

async function readTokenFile(path: string): Promise<string> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch (error) {
    throw new HoldfastError(
      'USAGE_INVALID',
      `Cannot read the token file ${path}: ${(error as Error).message}`,
      { cause: error },
    );
  }
}
