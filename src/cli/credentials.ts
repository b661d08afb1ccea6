import { readFile } from 'node:fs/promises';
import { HoldfastError } from '../core/index.js';
import type { Credential } from '../engine/index.js';

/** Environment variables a passphrase can come from, for one vault role. */
export interface PasswordSources {
  readonly passwordVar: string;
  readonly fileVar: string;
  readonly keyFile?: string | undefined;
  readonly label: string;
}

/** The main vault's sources: HOLDFAST_PASSWORD, HOLDFAST_PASSWORD_FILE, --key-file. */
export function mainSources(keyFile?: string): PasswordSources {
  return {
    passwordVar: 'HOLDFAST_PASSWORD',
    fileVar: 'HOLDFAST_PASSWORD_FILE',
    keyFile,
    label: 'vault',
  };
}

/**
 * Reads the credential: key file, then the password variable, then the password file, then a
 * prompt on a terminal. Never takes a secret from the command line itself.
 */
export async function readCredential(
  sources: PasswordSources,
  confirm = false,
): Promise<Credential> {
  if (sources.keyFile) {
    const text = (await readFileOrThrow(sources.keyFile, 'key file')).trim();
    return { kind: 'keyfile', secret: Buffer.from(text, 'base64') };
  }
  const direct = process.env[sources.passwordVar];
  if (direct !== undefined && direct !== '') return { kind: 'passphrase', passphrase: direct };
  const file = process.env[sources.fileVar];
  if (file) {
    const text = await readFileOrThrow(file, sources.fileVar);
    return { kind: 'passphrase', passphrase: text.replace(/\r?\n$/, '') };
  }
  if (process.stdin.isTTY && process.stderr.isTTY) {
    const passphrase = await prompt(`Passphrase for the ${sources.label}: `);
    if (confirm && (await prompt('Repeat it: ')) !== passphrase) {
      throw new HoldfastError(
        'USAGE_INVALID',
        'The passphrases did not match; nothing was changed.',
      );
    }
    if (passphrase === '')
      throw new HoldfastError('PASSWORD_MISSING', 'An empty passphrase is not allowed.');
    return { kind: 'passphrase', passphrase };
  }
  throw new HoldfastError(
    'PASSWORD_MISSING',
    `No passphrase for the ${sources.label}: set ${sources.passwordVar} or ${sources.fileVar}, or run on a terminal to be asked.`,
  );
}

async function readFileOrThrow(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new HoldfastError(
      'USAGE_INVALID',
      `Cannot read the ${what} ${path}: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/** Reads a line from the terminal without echoing it. */
async function prompt(question: string): Promise<string> {
  process.stderr.write(question);
  const stdin = process.stdin;
  stdin.setRawMode(true);
  stdin.resume();
  let answer = '';
  try {
    return await new Promise<string>((resolve, reject) => {
      const onData = (data: Buffer): void => {
        for (const char of data.toString('utf8')) {
          if (char === '\r' || char === '\n') {
            stdin.off('data', onData);
            resolve(answer);
            return;
          }
          if (char === '\u0003') {
            stdin.off('data', onData);
            reject(new HoldfastError('CANCELLED', 'Cancelled at the passphrase prompt.'));
            return;
          }
          answer = char === '\u007f' ? answer.slice(0, -1) : answer + char;
        }
      };
      stdin.on('data', onData);
    });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    process.stderr.write('\n');
  }
}
