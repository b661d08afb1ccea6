import {
  chmod,
  lstat,
  mkdir,
  readFile,
  readlink,
  symlink,
  truncate,
  writeFile,
  link,
  stat,
} from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { closeSync, existsSync, openSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { getAttributeSync, setAttributeSync } from 'fs-xattr';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryBackend } from '../backends/index.js';
import {
  backupPaths,
  makeTestVault,
  randomBytesSeeded,
  reopenTestVault,
  tempDir,
  writeTree,
} from './engine.testkit.js';
import { BlobReader } from './blob-reader.js';
import { Restorer } from './restorer.js';
import { decodeTree } from './tree.js';

describe('backup and restore round trip', () => {
  let dir: { path: string; cleanup(): Promise<void> };
  beforeEach(async () => {
    dir = await tempDir();
  });
  afterEach(async () => {
    await dir.cleanup();
  });

  it('restores files, links, holes and metadata exactly', async () => {
    const src = join(dir.path, 'src');
    await writeTree(src, {
      'a.txt': 'hello',
      empty: '',
      'sub/big.bin': randomBytesSeeded(300_000, 1),
      'sub/deeper/text': 'x'.repeat(100_000),
    });
    await mkdir(join(src, 'emptydir'));
    await symlink('a.txt', join(src, 'link'));
    await symlink('/nonexistent/target', join(src, 'dangling'));
    await link(join(src, 'a.txt'), join(src, 'hard'));
    setAttributeSync(join(src, 'a.txt'), 'user.origin', Buffer.from([0, 1, 2, 255]));
    setAttributeSync(join(src, 'sub'), 'user.note', 'a directory attribute');
    // A name that is not UTF-8 keeps its attributes too.
    const rawName = Buffer.concat([Buffer.from(join(src, 'sub') + '/'), Buffer.from([0x72, 0xff])]);
    await writeFile(rawName, 'raw');
    const fd = openSync(rawName, 'r');
    setAttributeSync(`/proc/self/fd/${fd}`, 'user.raw', Buffer.from('on a raw name'));
    closeSync(fd);
    await writeFile(join(src, 'sparse'), 'start');
    await truncate(join(src, 'sparse'), 5 * 1024 * 1024);
    const backend = new MemoryBackend();
    const vault = await makeTestVault(backend);
    const point = await backupPaths(vault, [src]);
    expect(point.stats.errors).toBe(0);

    const reopened = await reopenTestVault(backend);
    const target = join(dir.path, 'out');
    const errors: string[] = [];
    const progress = await new Restorer(reopened, point, {
      target,
      onError: (p, e) => errors.push(`${p}: ${String(e)}`),
    }).run();
    expect(errors).toEqual([]);
    const out = join(target, src);
    expect(await readFile(join(out, 'a.txt'), 'utf8')).toBe('hello');
    expect((await readFile(join(out, 'sub/big.bin'))).equals(randomBytesSeeded(300_000, 1))).toBe(
      true,
    );
    expect(await readFile(join(out, 'sub/deeper/text'), 'utf8')).toBe('x'.repeat(100_000));
    expect(await readlink(join(out, 'link'))).toBe('a.txt');
    expect(await readlink(join(out, 'dangling'))).toBe('/nonexistent/target');
    expect((await lstat(join(out, 'hard'))).ino).toBe((await lstat(join(out, 'a.txt'))).ino);
    expect((await lstat(join(out, 'emptydir'))).isDirectory()).toBe(true);
    const sparse = await stat(join(out, 'sparse'));
    expect(sparse.size).toBe(5 * 1024 * 1024);
    expect(sparse.blocks * 512).toBeLessThan(1024 * 1024);
    expect((await stat(join(out, 'sub/big.bin'))).mtimeMs).toBeCloseTo(
      (await stat(join(src, 'sub/big.bin'))).mtimeMs,
      0,
    );
    expect(progress.files).toBeGreaterThanOrEqual(6);
    expect(getAttributeSync(join(out, 'a.txt'), 'user.origin')).toEqual(
      Buffer.from([0, 1, 2, 255]),
    );
    expect(getAttributeSync(join(out, 'sub'), 'user.note').toString()).toBe(
      'a directory attribute',
    );
    const restoredRaw = Buffer.concat([
      Buffer.from(join(out, 'sub') + '/'),
      Buffer.from([0x72, 0xff]),
    ]);
    const rawFd = openSync(restoredRaw, 'r');
    try {
      expect(getAttributeSync(`/proc/self/fd/${rawFd}`, 'user.raw').toString()).toBe(
        'on a raw name',
      );
    } finally {
      closeSync(rawFd);
    }
  });

  it('second backup reuses unchanged files and stores nothing new', async () => {
    const src = join(dir.path, 'src');
    await writeTree(src, { 'a.bin': randomBytesSeeded(200_000, 2), 'b.txt': 'b' });
    const vault = await makeTestVault();
    const first = await backupPaths(vault, [src]);
    const second = await backupPaths(vault, [src], { parent: first });
    expect(second.stats.filesRead).toBe(0);
    expect(second.stats.newBytes).toBe(0);
    expect(second.tree).toBe(first.tree);
  });

  it('keeps the trees of unchanged directories and writes new ones only above a change', async () => {
    const src = join(dir.path, 'src');
    await writeTree(src, {
      'same/deep/a.txt': 'a',
      'same/b.txt': 'b',
      'changed/deep/c.txt': 'c',
      'changed/d.txt': 'd',
    });
    const backend = new MemoryBackend();
    const vault = await makeTestVault(backend);
    const first = await backupPaths(vault, [src]);
    // Only metadata changes (a mode: the file is read again, as its ctime moved, and its data
    // is known), yet the trees above it must be new.
    await chmod(join(src, 'changed/deep/c.txt'), 0o600);
    const second = await backupPaths(vault, [src], { parent: first });
    expect(second.stats.filesRead).toBe(1);

    const reader = new BlobReader(vault);
    const subtreeAt = async (root: string, path: string): Promise<string> => {
      let id = root;
      for (const part of join(src, path)
        .split('/')
        .filter((p) => p !== '')) {
        const nodes = decodeTree(await reader.load(id, 'tree'), 'tree');
        id = nodes.find((n) => n.name.toString() === part)!.subtree!;
      }
      return id;
    };
    expect(await subtreeAt(second.tree, 'same')).toBe(await subtreeAt(first.tree, 'same'));
    expect(await subtreeAt(second.tree, 'changed/deep')).not.toBe(
      await subtreeAt(first.tree, 'changed/deep'),
    );
    expect(await subtreeAt(second.tree, 'changed')).not.toBe(
      await subtreeAt(first.tree, 'changed'),
    );

    const target = join(dir.path, 'out');
    await new Restorer(await reopenTestVault(backend), second, { target }).run();
    expect((await stat(join(target, src, 'changed/deep/c.txt'))).mode & 0o777).toBe(0o600);
    expect(await readFile(join(target, src, 'same/deep/a.txt'), 'utf8')).toBe('a');
  });

  it('records extended attributes changed between backups and keeps unchanged ones', async () => {
    const src = join(dir.path, 'src');
    await writeTree(src, { 'a.bin': randomBytesSeeded(200_000, 3), 'keep.txt': 'k' });
    setAttributeSync(join(src, 'keep.txt'), 'user.kept', 'from the first backup');
    const backend = new MemoryBackend();
    const vault = await makeTestVault(backend);
    const first = await backupPaths(vault, [src]);
    setAttributeSync(join(src, 'a.bin'), 'user.added', 'after the first backup');
    setAttributeSync(src, 'user.dir', 'on the directory');
    const second = await backupPaths(vault, [src], { parent: first });
    // Only a.bin's ctime changed, so only it was read again; its content was stored before
    // and only the two changed trees are new.
    expect(second.stats.filesRead).toBe(1);
    expect(second.stats.newBytes).toBeLessThan(10_000);
    expect(second.tree).not.toBe(first.tree);

    const target = join(dir.path, 'out');
    await new Restorer(await reopenTestVault(backend), second, { target }).run();
    const out = join(target, src);
    expect(getAttributeSync(join(out, 'a.bin'), 'user.added').toString()).toBe(
      'after the first backup',
    );
    expect(getAttributeSync(out, 'user.dir').toString()).toBe('on the directory');
    expect(getAttributeSync(join(out, 'keep.txt'), 'user.kept').toString()).toBe(
      'from the first backup',
    );
  });

  it('never replaces what another process puts into a directory the restore created', async () => {
    const src = join(dir.path, 'src');
    await writeTree(src, { 'new/a.txt': 'restored a', 'new/b.txt': 'restored b' });
    const target = join(dir.path, 'out');
    const intruder = join(target, src, 'new/b.txt');
    // Entries in directories the restore created are not looked up before they are created;
    // a file that appears there meanwhile (planted at the restore's first read once its
    // directory exists) must make the exclusive create fail, not be replaced.
    let restoring = false;
    const planting = new (class extends MemoryBackend {
      override async getRange(...args: Parameters<MemoryBackend['getRange']>) {
        if (restoring && existsSync(dirname(intruder)) && !existsSync(intruder)) {
          writeFileSync(intruder, 'planted');
        }
        return super.getRange(...args);
      }
    })();
    const point = await backupPaths(await makeTestVault(planting), [src]);
    restoring = true;
    const errors: string[] = [];
    await new Restorer(await reopenTestVault(planting), point, {
      target,
      onError: (p) => errors.push(p),
    }).run();
    expect(await readFile(intruder, 'utf8')).toBe('planted');
    expect(errors).toEqual([intruder]);
    expect(await readFile(join(target, src, 'new/a.txt'), 'utf8')).toBe('restored a');
  });

  it('enters no directory it could not make, so nothing is written through what stands there', async () => {
    const src = join(dir.path, 'src');
    await writeTree(src, { 'd/sub/inner.txt': 'inside', 'd/z.txt': 'beside' });
    const backend = new MemoryBackend();
    const point = await backupPaths(await makeTestVault(backend), [src]);
    const target = join(dir.path, 'out');
    const outside = join(dir.path, 'outside');
    await mkdir(outside);
    // A symlink appears where d/sub is to be made, after d was made: the planner checks its
    // signal before it loads each directory's tree, which is then.
    const squatted = join(target, src, 'd', 'sub');
    const signal = new AbortController().signal;
    signal.throwIfAborted = () => {
      if (existsSync(dirname(squatted)) && !existsSync(squatted)) symlinkSync(outside, squatted);
    };
    const errors: string[] = [];
    await new Restorer(await reopenTestVault(backend), point, {
      target,
      signal,
      onError: (p) => errors.push(p),
    }).run();
    expect(errors).toEqual([squatted]);
    expect(readdirSync(outside)).toEqual([]);
    expect(await readFile(join(target, src, 'd/z.txt'), 'utf8')).toBe('beside');
  });
});
