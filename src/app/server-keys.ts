import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describeError, HoldfastError } from '../core/index.js';
import type { Credential } from '../engine/index.js';

/**
 * The server opens vaults with key files of its own, kept in `<data-dir>/keys` (mode 0600):
 * scheduled backups need no passphrase, and the catalog never holds a secret. The passphrase
 * or key file the operator gave stays a separate key slot: the way in without the server.
 */
export async function createServerKeyFile(
  dataDir: string,
  name: string,
): Promise<{
  path: string;
  credential: Credential;
}> {
  const dir = join(dataDir, 'keys');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const secret = randomBytes(32);
  const path = join(dir, `${name}-${randomBytes(4).toString('hex')}.key`);
  await writeFile(path, secret.toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
  return { path, credential: { kind: 'keyfile', secret } };
}

/** Reads a key file (base64 of the secret, as `holdfast init --new-key-file` writes it). */
export async function readKeyFile(path: string): Promise<Credential> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new HoldfastError(
      'USAGE_INVALID',
      `Cannot read key file ${path}: ${describeError(error)}`,
      {
        cause: error,
      },
    );
  }
  return { kind: 'keyfile', secret: Buffer.from(text.trim(), 'base64') };
}
