import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryBackend } from '../backends/index.js';
import { InlineBlobSealer, prune, Restorer } from '../engine/index.js';
import {
  makeTestVault,
  randomBytesSeeded,
  reopenTestVault,
  tempDir,
} from '../engine/engine.testkit.js';
import { backupFiles } from './file-backup.js';

let dir: { path: string; cleanup(): Promise<void> };
beforeEach(async () => {
  dir = await tempDir();
});
afterEach(async () => {
  await dir.cleanup();
});

describe('backupFiles', () => {
  it('reads the index again once its lock is held, so a prune that ended before cannot leave it pointing at removed data', async () => {
    const backend = new MemoryBackend();
    const source = join(dir.path, 'source');
    await mkdir(source);
    const content = randomBytesSeeded(400_000, 7);
    await writeFile(join(source, 'data.bin'), content);
    const first = await backupFiles(await makeTestVault(backend), request(source));

    // A second backup opens the vault (and reads its index) while the first point is forgotten
    // and pruned by someone else; only then does it get its lock.
    const stale = await reopenTestVault(backend);
    await backend.delete(`points/${first.id}`);
    const pruner = await reopenTestVault(backend);
    await prune(pruner, { sealer: new InlineBlobSealer(pruner.keys.encryption, { level: 3 }) });
    expect([...backend.objects()].filter(([name]) => name.startsWith('packs/'))).toHaveLength(0);

    const second = await backupFiles(stale, request(source));
    const target = join(dir.path, 'restore');
    const errors: unknown[] = [];
    const reader = await reopenTestVault(backend);
    await new Restorer(reader, second, { target, onError: (_p, e) => errors.push(e) }).run();
    expect(errors).toEqual([]);
    expect((await readFile(join(target, source, 'data.bin'))).equals(content)).toBe(true);
  });
});

function request(source: string) {
  return { paths: [source], excludes: [], oneFileSystem: false, tags: [], onError: fail };
}

function fail(path: string, error: unknown): never {
  throw new Error(`unexpected error on ${path}: ${String(error)}`);
}
