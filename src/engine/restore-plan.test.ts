import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlobReader } from './blob-reader.js';
import { backupPaths, makeTestVault, tempDir, writeTree } from './engine.testkit.js';
import { planRestore, type RestoreFilter } from './restore-plan.js';
import type { Vault } from './vault.js';
import type { Point } from './point.js';

describe('restore plan', () => {
  let dir: { path: string; cleanup(): Promise<void> };
  let src: string;
  let vault: Vault;
  let point: Point;

  beforeEach(async () => {
    dir = await tempDir();
    src = join(dir.path, 'src');
    await writeTree(src, {
      'a/x.txt': 'x',
      'a/y.log': 'y',
      'b/c/d/z.txt': 'z',
      'b/w.log': 'w',
      'top.txt': 't',
    });
    await mkdir(join(src, 'empty'));
    vault = await makeTestVault();
    point = await backupPaths(vault, [src]);
  });
  afterEach(async () => {
    await dir.cleanup();
  });

  /** Planned entries below `src` as `path (depth)`, in the order planned. */
  async function plan(filter: RestoreFilter): Promise<string[]> {
    const base = src.slice(1);
    const baseDepth = base.split('/').length;
    const out: string[] = [];
    for await (const entry of planRestore(new BlobReader(vault), point.tree, filter, () => {})) {
      const path = entry.path.toString();
      expect(entry.depth).toBe(path.split('/').length - 1);
      if (path.startsWith(`${base}/`))
        out.push(`${path.slice(base.length + 1)} ${entry.depth - baseDepth}`);
    }
    return out;
  }

  it('yields every entry, each directory before what it holds, in name order', async () => {
    expect(await plan({})).toEqual([
      'a 0',
      'a/x.txt 1',
      'a/y.log 1',
      'b 0',
      'b/c 1',
      'b/c/d 2',
      'b/c/d/z.txt 3',
      'b/w.log 1',
      'empty 0',
      'top.txt 0',
    ]);
  });

  it('yields only the directories that lead to included entries', async () => {
    expect(await plan({ include: ['z.txt'] })).toEqual([
      'b 0',
      'b/c 1',
      'b/c/d 2',
      'b/c/d/z.txt 3',
    ]);
  });

  it('includes a whole directory with everything below it', async () => {
    expect(await plan({ include: [join(src, 'b')] })).toEqual([
      'b 0',
      'b/c 1',
      'b/c/d 2',
      'b/c/d/z.txt 3',
      'b/w.log 1',
    ]);
  });

  it('leaves out excluded entries and excluded directories with their contents', async () => {
    expect(await plan({ exclude: ['*.log', join(src, 'b/c')] })).toEqual([
      'a 0',
      'a/x.txt 1',
      'b 0',
      'empty 0',
      'top.txt 0',
    ]);
  });
});
