import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { collect } from '../core/index.js';
import { describeBackendConformance, failureCode } from './backend-conformance.testkit.js';
import { classifyFsError } from './fs-errors.js';
import { LocalBackend } from './local-backend.js';

async function makeTempDir(): Promise<string> {
  return mkdtemp(path.join(tmpdir(), 'holdfast-local-'));
}

// The root does not exist yet, so the suite also covers creating it on the first put.
describeBackendConformance('LocalBackend', async () => {
  const dir = await makeTempDir();
  return {
    backend: new LocalBackend(path.join(dir, 'vault')),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

/** Every file name under `dir`, recursively, relative to it. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)))
    .sort();
}

/** A signal that reads as not aborted `checks` times and as aborted afterwards. */
function signalAbortingAfter(checks: number): AbortSignal {
  let reads = 0;
  const signal = {
    get aborted() {
      reads += 1;
      return reads > checks;
    },
    reason: new Error('aborted mid-put'),
  };
  return signal as unknown as AbortSignal;
}

function errnoError(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: simulated`), { code });
}

describe('LocalBackend on disk', () => {
  let dir: string;
  let root: string;
  let backend: LocalBackend;

  beforeEach(async () => {
    dir = await makeTempDir();
    root = path.join(dir, 'vault');
    backend = new LocalBackend(root);
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('stores each object as a file at its name under the absolute root', async () => {
    await backend.put('packs/ab/ab01', Buffer.from('pack'));
    expect(backend.location).toBe(path.resolve(root));
    expect(await readFile(path.join(root, 'packs', 'ab', 'ab01'), 'utf8')).toBe('pack');
    expect(await filesUnder(root)).toEqual([path.join('packs', 'ab', 'ab01')]);
  });

  it('removes the temp file when a conditional put finds the name taken', async () => {
    await backend.put('locks/l1', Buffer.from('mine'));
    const code = await failureCode(
      backend.put('locks/l1', Buffer.from('x'), { ifNotExists: true }),
    );
    expect(code).toBe('BACKEND_EXISTS');
    expect(await filesUnder(root)).toEqual([path.join('locks', 'l1')]);
  });

  it('removes the temp file when a put is cancelled after writing it', async () => {
    const signal = signalAbortingAfter(1);
    expect(await failureCode(backend.put('index/i1', Buffer.from('x'), { signal }))).toBe(
      'CANCELLED',
    );
    // The directory was created before the cancel, but it holds neither object nor temp file.
    expect(await readdir(path.join(root, 'index'))).toEqual([]);
  });

  it('removes the temp file and reports BACKEND_IO when a directory has the name', async () => {
    await backend.put('dir/child', Buffer.from('x'));
    const error = await backend.put('dir', Buffer.from('y')).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'BACKEND_IO', cause: { code: 'EISDIR' } });
    expect(await filesUnder(root)).toEqual([path.join('dir', 'child')]);
  });

  it('classifies a regular file in the parent path (EEXIST, ENOTDIR)', async () => {
    await backend.put('file', Buffer.from('x'));
    const error = await backend.put('file/child', Buffer.from('y')).catch((e: unknown) => e);
    // mkdir reports EEXIST here: the path it should create is taken by a file.
    expect(error).toMatchObject({ code: 'BACKEND_IO', cause: { code: 'EEXIST' } });
    expect(String((error as Error).message)).toContain('"file/child"');
    expect(String((error as Error).message)).toContain('in the way');
    const deeper = await backend.put('file/a/b', Buffer.from('y')).catch((e: unknown) => e);
    expect(deeper).toMatchObject({ code: 'BACKEND_IO', cause: { code: 'ENOTDIR' } });
    // For reads a file in the way just means the object does not exist.
    expect(await failureCode(backend.get('file/child'))).toBe('BACKEND_NOT_FOUND');
    expect(await failureCode(backend.stat('file/child'))).toBe('BACKEND_NOT_FOUND');
    expect(await failureCode(backend.delete('file/child'))).toBe('BACKEND_NOT_FOUND');
    expect(await filesUnder(root)).toEqual(['file']);
  });

  it('does not treat directories as objects', async () => {
    await backend.put('packs/ab/ab01', Buffer.from('x'));
    expect(await failureCode(backend.get('packs/ab'))).toBe('BACKEND_NOT_FOUND');
    expect(await failureCode(backend.getRange('packs/ab', 0, 1))).toBe('BACKEND_NOT_FOUND');
    expect(await failureCode(backend.stat('packs/ab'))).toBe('BACKEND_NOT_FOUND');
    expect(await failureCode(backend.delete('packs/ab'))).toBe('BACKEND_NOT_FOUND');
  });

  it('never lists half-written temp files and refuses temp names', async () => {
    await backend.put('packs/ab/ab01', Buffer.from('done'));
    await writeFile(path.join(root, '.tmp-0123abcd'), 'half');
    await mkdir(path.join(root, 'packs', '.tmp-dir'));
    await writeFile(path.join(root, 'packs', '.tmp-dir', 'x'), 'half');
    await writeFile(path.join(root, 'packs', 'ab', '.tmp-89ef'), 'half');
    expect(await collect(backend.list(''))).toEqual([{ name: 'packs/ab/ab01', size: 4 }]);
    expect(await collect(backend.list('packs/ab/.tmp'))).toEqual([]);
    expect(await failureCode(backend.get('packs/ab/.tmp-89ef'))).toBe('USAGE_INVALID');
    expect(await failureCode(backend.put('.tmp-x', Buffer.from('x')))).toBe('USAGE_INVALID');
  });

  it('lists a root that does not exist yet as empty', async () => {
    expect(await collect(backend.list(''))).toEqual([]);
  });
});

describe('classifyFsError', () => {
  const cases: Array<[string, string]> = [
    ['ENOENT', 'BACKEND_NOT_FOUND'],
    ['EACCES', 'BACKEND_PERMISSION'],
    ['EPERM', 'BACKEND_PERMISSION'],
    ['EROFS', 'BACKEND_PERMISSION'],
    ['ENOSPC', 'BACKEND_NO_SPACE'],
    ['EDQUOT', 'BACKEND_NO_SPACE'],
    ['EIO', 'BACKEND_IO'],
    ['EMFILE', 'BACKEND_IO'],
  ];

  it.each(cases)('maps %s to %s, keeping the cause and naming the object', (errno, code) => {
    const cause = errnoError(errno);
    const error = classifyFsError(cause, 'write', 'packs/ab/ab01', '/srv/vault');
    expect(error.code).toBe(code);
    expect(error.cause).toBe(cause);
    expect(error.message).toContain('"packs/ab/ab01"');
    expect(error.message).toContain('/srv/vault');
  });

  it('maps a file or directory in the way to not found for reads and BACKEND_IO for writes', () => {
    for (const errno of ['ENOTDIR', 'EISDIR', 'EEXIST']) {
      const missing = errno === 'EEXIST' ? 'BACKEND_IO' : 'BACKEND_NOT_FOUND';
      expect(classifyFsError(errnoError(errno), 'read', 'a/b', '/v').code).toBe(missing);
      expect(classifyFsError(errnoError(errno), 'delete', 'a/b', '/v').code).toBe(missing);
      expect(classifyFsError(errnoError(errno), 'write', 'a/b', '/v').code).toBe('BACKEND_IO');
    }
  });

  it('maps an aborted read to CANCELLED and handles values that are not errors', () => {
    expect(classifyFsError(errnoError('ABORT_ERR'), 'read', 'a', '/v').code).toBe('CANCELLED');
    expect(classifyFsError('weird', 'read', 'a', '/v').code).toBe('BACKEND_IO');
  });
});
