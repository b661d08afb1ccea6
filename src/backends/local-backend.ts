import { randomBytes } from 'node:crypto';
import type { Dir } from 'node:fs';
import { link, mkdir, open, opendir, readFile, rename, stat, unlink } from 'node:fs/promises';
import * as path from 'node:path';
import { HoldfastError, throwIfAborted } from '../core/index.js';
import type { Backend, BackendCapabilities, ObjectInfo, OpOptions, PutOptions } from './backend.js';
import { classifyFsError, errnoCode, notFoundError } from './fs-errors.js';
import { TEMP_PREFIX, assertObjectName, assertObjectPrefix, assertRange } from './object-name.js';

/**
 * A backend on a local or mounted filesystem: each object is a file under the root directory at
 * its `/`-separated name. Writes go to a `.tmp-…` file that is fsynced and then renamed (or, for
 * `ifNotExists`, hard-linked) into place, so readers never see a partial object.
 */
export class LocalBackend implements Backend {
  /** Conditional puts via `link(2)`, positional reads, and listings that see every put. */
  readonly capabilities: BackendCapabilities = Object.freeze({
    conditionalPut: true,
    rangeReads: true,
    consistentList: true,
    objectLock: false,
  });

  /** The absolute root directory. */
  readonly location: string;

  readonly #root: string;

  /** Uses `rootDir` (resolved to an absolute path) as the root; it is created on the first put. */
  constructor(rootDir: string) {
    this.#root = path.resolve(rootDir);
    this.location = this.#root;
  }

  /** Writes a temp file, fsyncs it, publishes it under `name`, then fsyncs the directory. */
  async put(name: string, data: Uint8Array, options: PutOptions = {}): Promise<void> {
    assertObjectName(name);
    throwIfAborted(options.signal);
    const file = this.#path(name);
    const dir = path.dirname(file);
    const temp = path.join(dir, TEMP_PREFIX + randomBytes(8).toString('hex'));
    let created = false;
    try {
      await ensureDir(dir);
      // 'wx': never reuse a file someone else created, so cleanup only removes our own.
      const handle = await open(temp, 'wx', 0o600);
      created = true;
      try {
        await handle.writeFile(data);
        await handle.sync();
      } finally {
        await handle.close();
      }
      // Last check before the object becomes visible: a cancelled put leaves nothing behind.
      throwIfAborted(options.signal);
      if (options.ifNotExists === true) await this.#linkNew(temp, file, name);
      else await rename(temp, file);
      await syncDir(dir);
    } catch (error) {
      // After a successful rename or link+unlink the temp name is gone and this is a no-op.
      if (created) await unlink(temp).catch(() => undefined);
      throw classifyFsError(error, 'write', name, this.location);
    }
  }

  /** Reads the whole file. */
  async get(name: string, options: OpOptions = {}): Promise<Buffer> {
    assertObjectName(name);
    throwIfAborted(options.signal);
    try {
      const readOptions = options.signal === undefined ? {} : { signal: options.signal };
      return await readFile(this.#path(name), readOptions);
    } catch (error) {
      throw classifyFsError(error, 'read', name, this.location);
    }
  }

  /** Reads at most `length` bytes at `offset` through one file handle; short past the end. */
  async getRange(
    name: string,
    offset: number,
    length: number,
    options: OpOptions = {},
  ): Promise<Buffer> {
    assertObjectName(name);
    assertRange(offset, length);
    throwIfAborted(options.signal);
    try {
      const handle = await open(this.#path(name), 'r');
      try {
        const info = await handle.stat();
        if (!info.isFile()) throw notFoundError(name, this.location);
        // Sized from the file, not the request, so a huge length on a small file costs nothing.
        // Not zero-filled (every byte is read over, and a short read is cut off below) and not
        // from node's shared pool, so the result is a buffer of its own that can move between
        // threads without a copy.
        const buffer = Buffer.allocUnsafeSlow(Math.max(0, Math.min(length, info.size - offset)));
        let filled = 0;
        while (filled < buffer.length) {
          const { bytesRead } = await handle.read(
            buffer,
            filled,
            buffer.length - filled,
            offset + filled,
          );
          if (bytesRead === 0) break;
          filled += bytesRead;
        }
        return buffer.subarray(0, filled);
      } finally {
        await handle.close();
      }
    } catch (error) {
      throw classifyFsError(error, 'read', name, this.location);
    }
  }

  /** Walks directories lazily from the deepest one the prefix names; skips temp files. */
  async *list(prefix: string, options: OpOptions = {}): AsyncGenerator<ObjectInfo> {
    assertObjectPrefix(prefix);
    throwIfAborted(options.signal);
    const cut = prefix.lastIndexOf('/') + 1;
    yield* this.#walk(prefix.slice(0, cut), prefix.slice(cut), options.signal);
  }

  /** Size of the file; directories are not objects. */
  async stat(name: string, options: OpOptions = {}): Promise<ObjectInfo> {
    assertObjectName(name);
    throwIfAborted(options.signal);
    try {
      const info = await stat(this.#path(name));
      if (!info.isFile()) throw notFoundError(name, this.location);
      return { name, size: info.size };
    } catch (error) {
      throw classifyFsError(error, 'read', name, this.location);
    }
  }

  /** Unlinks the file; empty directories stay, as later puts will reuse them. */
  async delete(name: string, options: OpOptions = {}): Promise<void> {
    assertObjectName(name);
    throwIfAborted(options.signal);
    try {
      await unlink(this.#path(name));
    } catch (error) {
      throw classifyFsError(error, 'delete', name, this.location);
    }
  }

  /** Nothing to release: every operation closes its own handles. */
  async close(): Promise<void> {}

  #path(name: string): string {
    return path.join(this.#root, ...name.split('/'));
  }

  async #linkNew(temp: string, file: string, name: string): Promise<void> {
    try {
      // link(2) fails with EEXIST instead of replacing, which makes the check-and-create atomic.
      await link(temp, file);
    } catch (error) {
      if (errnoCode(error) !== 'EEXIST') throw error;
      throw new HoldfastError(
        'BACKEND_EXISTS',
        `Object "${name}" already exists in ${this.location}; it was left unchanged.`,
        { cause: error },
      );
    }
    await unlink(temp);
  }

  /** Yields objects under `dirName` (`''` or ending in `/`) whose next segment starts with `partial`. */
  async *#walk(
    dirName: string,
    partial: string,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<ObjectInfo> {
    let dir: Dir;
    try {
      dir = await opendir(path.join(this.#root, dirName));
    } catch (error) {
      // A prefix naming a directory that does not exist (or is a file) simply matches nothing.
      const code = errnoCode(error);
      if (code === 'ENOENT' || code === 'ENOTDIR') return;
      throw classifyFsError(error, 'list', dirName === '' ? '/' : dirName, this.location);
    }
    // Iterating a Dir closes it when the loop ends, breaks or throws.
    for await (const entry of dir) {
      throwIfAborted(signal);
      if (!entry.name.startsWith(partial) || entry.name.startsWith(TEMP_PREFIX)) continue;
      const name = dirName + entry.name;
      // Symlinked directories are not followed, so a link loop cannot make a listing endless.
      if (entry.isDirectory()) {
        yield* this.#walk(`${name}/`, '', signal);
        continue;
      }
      const info = await stat(path.join(this.#root, dirName, entry.name)).catch(
        (error: unknown) => {
          // Deleted between readdir and stat: it is no longer an object, so it is not listed.
          if (errnoCode(error) === 'ENOENT') return undefined;
          throw classifyFsError(error, 'list', name, this.location);
        },
      );
      if (info?.isFile() === true) yield { name, size: info.size };
    }
  }
}

/** Creates `dir` and fsyncs the parents of what was created, so new directories survive a crash. */
async function ensureDir(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true });
  if (first === undefined) return;
  // The object's own directory is fsynced after the rename; its ancestors hold the new entries.
  for (let current = path.dirname(dir); ; current = path.dirname(current)) {
    await syncDir(current);
    if (current === path.dirname(first) || current === path.dirname(current)) break;
  }
}

/** Fsyncs a directory so renames and links inside it are durable. */
async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } catch (error) {
    // Some filesystems (certain network and FUSE mounts) cannot fsync a directory at all; the
    // file itself is already synced, which is the best such a mount offers.
    const code = errnoCode(error);
    if (code !== 'EINVAL' && code !== 'ENOTSUP') throw error;
  } finally {
    await handle.close();
  }
}
