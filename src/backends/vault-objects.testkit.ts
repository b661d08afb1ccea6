/**
 * The objects of one vault location, listed, read, written and removed directly — as an operator
 * looking into the store, or damage, would — for tests that look at or tamper with a vault
 * wherever it lives: files under a directory, blobs in Azure, objects in S3. Directories are
 * read with the file system; object stores through the product's own backends, which the
 * conformance suite tests on their own.
 */
import { mkdirSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { systemClock } from '../core/index.js';
import { AzureBlobBackend } from './azure-blob-backend.js';
import type { Backend } from './backend.js';
import { stackBackend } from './backend-stack.js';
import { timerSleep } from './retrying-backend.js';
import { S3Backend } from './s3-backend.js';
import { parseS3Url } from './s3-location.js';

/** Environment variables with a store's credentials; `undefined` means not set. */
export type ObjectsEnv = Record<string, string | undefined>;

/** One vault location's objects, named as the vault format names them (`points/<id>`, …). */
export interface VaultObjects {
  /** The vault location: a directory, or an `azure://` or `s3://` URL. */
  readonly location: string;
  /**
   * Names of the objects below the directory `dir` (`''`: the whole vault), relative to it, with
   * `/` between levels, sorted; objects being written (temporary files) are not listed, and a
   * directory that does not exist lists nothing.
   */
  list(dir?: string): Promise<string[]>;
  /** The whole object at `key`. */
  read(key: string): Promise<Buffer>;
  /** Replaces (or creates) the object at `key`. */
  write(key: string, bytes: Uint8Array): Promise<void>;
  /** Removes the object at `key`. */
  remove(key: string): Promise<void>;
  /** Releases connections. */
  close(): Promise<void>;
}

/**
 * Opens the objects of `location`, taking an object store's credentials and endpoint from `env`
 * as the command does: a directory path, `azure://<account>/<container>/<prefix>` or
 * `s3://<bucket>/<prefix>`.
 */
export function openVaultObjects(location: string, env: ObjectsEnv = {}): VaultObjects {
  if (location.startsWith('azure://'))
    return backendObjects(location, AzureBlobBackend.fromUrl(location, definedOnly(env)));
  if (location.startsWith('s3://')) {
    const settings = parseS3Url(location, definedOnly(env));
    // The SDK reads its checksum settings from the process's own environment; the store's
    // environment is the command's, so they are passed on here.
    const checksums = {
      ...(env['AWS_REQUEST_CHECKSUM_CALCULATION'] === 'WHEN_REQUIRED'
        ? { requestChecksumCalculation: 'WHEN_REQUIRED' as const }
        : {}),
      ...(env['AWS_RESPONSE_CHECKSUM_VALIDATION'] === 'WHEN_REQUIRED'
        ? { responseChecksumValidation: 'WHEN_REQUIRED' as const }
        : {}),
    };
    const backend = new S3Backend({
      bucket: settings.bucket,
      prefix: settings.keyPrefix,
      ...(settings.endpoint === undefined ? {} : { endpoint: settings.endpoint }),
      region: settings.region,
      forcePathStyle: settings.forcePathStyle,
      ...(settings.credentials === undefined ? {} : { credentials: settings.credentials }),
      clientOptions: checksums,
    });
    return backendObjects(location, backend);
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location))
    throw new Error(`no test accessor for the objects of ${location}`);
  return directoryObjects(path.resolve(location));
}

/** Copies every object of `from` to `to` (which should be empty). */
export async function copyVaultObjects(from: VaultObjects, to: VaultObjects): Promise<void> {
  for (const key of await from.list()) await to.write(key, await from.read(key));
}

function definedOnly(env: ObjectsEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(env)) if (value !== undefined) out[key] = value;
  return out;
}

/** A directory `dir/` prefix for a backend listing (`''` stays the whole location). */
function prefixOf(dir: string): string {
  const trimmed = dir.replace(/^\/+|\/+$/g, '');
  return trimmed === '' ? '' : `${trimmed}/`;
}

function backendObjects(location: string, raw: Backend): VaultObjects {
  // Retried as the product reads object stores (app/open-vault.ts): a local test server that
  // resets one connection must not fail a test about something else.
  const backend = stackBackend(raw, {
    random: Math.random,
    sleep: timerSleep,
    clock: systemClock,
    retry: { maxAttempts: 5 },
  });
  return {
    location,
    list: async (dir = '') => {
      const prefix = prefixOf(dir);
      const names: string[] = [];
      for await (const info of backend.list(prefix)) names.push(info.name.slice(prefix.length));
      return names.sort();
    },
    read: (key) => backend.get(key),
    write: (key, bytes) => backend.put(key, bytes),
    remove: (key) => backend.delete(key),
    close: () => backend.close(),
  };
}

function directoryObjects(root: string): VaultObjects {
  const full = (key: string): string => path.join(root, ...key.split('/'));
  return {
    location: root,
    // Synchronous underneath: the crash tests poll listings while a backup runs.
    list: async (dir = '') => walk(full(prefixOf(dir)), '').sort(),
    read: async (key) => readFileSync(full(key)),
    write: async (key, bytes) => {
      mkdirSync(path.dirname(full(key)), { recursive: true });
      writeFileSync(full(key), bytes);
    },
    remove: async (key) => unlinkSync(full(key)),
    close: async () => {},
  };
}

/** Files below `dir` as `rel/name`, skipping names that start with `.` (files being written). */
function walk(dir: string, rel: string): string[] {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return entries.flatMap((e) => {
    if (e.name.startsWith('.')) return [];
    const name = rel === '' ? e.name : `${rel}/${e.name}`;
    if (e.isDirectory()) return walk(path.join(dir, e.name), name);
    return e.isFile() ? [name] : [];
  });
}
