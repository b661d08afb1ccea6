import { homedir } from 'node:os';
import { join } from 'node:path';

/** Where the server keeps its catalog, keys, snapshots and token by default. */
export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env['HOLDFAST_DATA_DIR']) return env['HOLDFAST_DATA_DIR'];
  const dataHome = env['XDG_DATA_HOME'] || join(homedir(), '.local', 'share');
  return join(dataHome, 'holdfast');
}

/** The default address of the server's API. */
export const DEFAULT_LISTEN = '127.0.0.1:8440';

/** The file the server writes its first admin token to (mode 0600). */
export function adminTokenPath(dataDir: string): string {
  return join(dataDir, 'admin.token');
}
