/**
 * Restoring crafted points whose trees try to write outside the restore target: names like
 * `..` or containing `/`, and a symlink followed by a directory of the same name. Restore must
 * refuse those entries, write nothing outside the target, say so, and exit 3.
 */
import {
  mkdirSync,
  readFileSync,
  readlinkSync,
  lstatSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSPHRASE, Sandbox, type RestoreSummary } from './cli.testkit.js';
import { writeCraftedPoint, type CraftedEntry } from './crafted-vault.testkit.js';
import { diffTrees, showPath, snapshotTree, type TreeSnapshot } from './tree.testkit.js';

describe('restore of hostile points', () => {
  let sb: Sandbox;
  let outside: string;
  let work: string;
  let escapes: string;
  let symlinkFirst: string;
  let replaceLinks: string;

  /** Everything in the sandbox except the vault (locks come and go) and one restore target. */
  function world(target: string): { snapshot: TreeSnapshot; ignore: (rel: string) => boolean } {
    const rel = target.slice(sb.root.length + 1);
    const ignore = (p: string): boolean =>
      p === 'vault' || p.startsWith('vault/') || p === rel || p.startsWith(rel + '/');
    return { snapshot: snapshotTree(sb.root), ignore };
  }

  /** Runs `body` and checks that nothing outside `target` changed meanwhile. */
  async function outsideUntouched(target: string, body: () => Promise<void>): Promise<void> {
    mkdirSync(target, { recursive: true });
    const before = world(target);
    await body();
    const after = snapshotTree(sb.root);
    expect(
      diffTrees(before.snapshot, after, { ignore: before.ignore }),
      'something outside the restore target changed',
    ).toEqual([]);
  }

  async function restore(ref: string, target: string, extra: string[] = []) {
    const args = ['--json', 'restore', ref, '--target', target, ...extra];
    const result = await sb.cli(args);
    return { result, summary: JSON.parse(result.stdout || 'null') as RestoreSummary | null };
  }

  beforeAll(async () => {
    sb = await Sandbox.create('hostile');
    await sb.init();
    outside = sb.path('outside');
    work = sb.path('work');
    mkdirSync(join(outside, 'sub'), { recursive: true });
    mkdirSync(work);
    writeFileSync(join(outside, 'victim.txt'), 'must not change\n');
    writeFileSync(join(outside, 'sub', 'keep'), 'must not change either\n');

    const dirWithX = (name: string, content: string): CraftedEntry => ({
      kind: 'dir',
      name,
      entries: [{ kind: 'file', name: 'x', content }],
    });
    escapes = await writeCraftedPoint({
      vault: sb.vault,
      passphrase: PASSPHRASE,
      time: '2031-01-01T00:00:00.000Z',
      paths: ['/crafted'],
      root: [
        {
          kind: 'dir',
          name: '..',
          entries: [{ kind: 'file', name: 'escaped-root', content: 'x' }],
        },
        {
          kind: 'dir',
          name: 'crafted',
          entries: [
            { kind: 'file', name: '..', content: 'a file named ..' },
            { kind: 'file', name: '../x', content: 'one level up' },
            { kind: 'file', name: '../../../outside/planted', content: 'far up' },
            { kind: 'file', name: `${outside}/planted`, content: 'absolute' },
            dirWithX('.', 'in a directory named .'),
            { kind: 'file', name: '', content: 'empty name' },
            { kind: 'file', name: 'nul\0byte', content: 'NUL in the name' },
            { kind: 'symlink', name: 'd', target: outside },
            dirWithX('d', 'written through the symlink'),
            { kind: 'file', name: 'ok.txt', content: 'fine\n' },
            {
              kind: 'dir',
              name: 'sub',
              entries: [
                dirWithX('..', 'up from sub'),
                { kind: 'file', name: 'ok2.txt', content: 'fine too\n' },
              ],
            },
          ],
        },
      ],
    });
    symlinkFirst = await writeCraftedPoint({
      vault: sb.vault,
      passphrase: PASSPHRASE,
      time: '2031-01-02T00:00:00.000Z',
      paths: ['/crafted'],
      root: [
        {
          kind: 'dir',
          name: 'crafted',
          entries: [
            { kind: 'symlink', name: 'e', target: outside },
            { kind: 'symlink', name: 'f', target: join(outside, 'victim.txt') },
            { kind: 'symlink', name: 'g', target: join(outside, 'sub') },
          ],
        },
      ],
    });
    replaceLinks = await writeCraftedPoint({
      vault: sb.vault,
      passphrase: PASSPHRASE,
      time: '2031-01-03T00:00:00.000Z',
      paths: ['/crafted'],
      root: [
        {
          kind: 'dir',
          name: 'crafted',
          entries: [
            dirWithX('e', 'planted through e'),
            { kind: 'file', name: 'f', content: 'overwritten\n' },
            {
              kind: 'dir',
              name: 'g',
              entries: [{ kind: 'file', name: 'keep', content: 'replaced\n' }],
            },
          ],
        },
      ],
    });
  }, 120_000);

  afterAll(async () => {
    await sb?.cleanup();
  });

  it('refuses names that leave their directory and a directory behind a symlink of the same name', async () => {
    const target = join(work, 'escapes');
    await outsideUntouched(target, async () => {
      const { result, summary } = await restore(escapes, target);
      expect(result.code, result.stderr).toBe(3);
      const refused = [
        '/..',
        '/crafted/',
        '/crafted/.',
        '/crafted/..',
        '/crafted/../x',
        '/crafted/../../../outside/planted',
        `/crafted/${outside}/planted`,
        '/crafted/d',
        '/crafted/nul\0byte',
        '/crafted/sub/..',
      ];
      const failures = summary?.failures ?? [];
      for (const path of refused) {
        const failure = failures.find((f) => f.path === path || f.path.endsWith(path));
        expect(
          failure,
          `no refusal reported for ${showPath(path)}: ${result.stderr}`,
        ).toBeDefined();
        expect(failure?.error).toMatch(/refused/i);
      }
      expect(failures).toHaveLength(refused.length);
      expect(result.stderr).toMatch(/refused/i);
    });
    const restored = snapshotTree(target);
    expect([...restored.keys()].sort()).toEqual([
      '',
      'crafted',
      'crafted/d',
      'crafted/ok.txt',
      'crafted/sub',
      'crafted/sub/ok2.txt',
    ]);
    expect(readlinkSync(join(target, 'crafted', 'd'))).toBe(outside);
    expect(readFileSync(join(target, 'crafted', 'ok.txt'), 'utf8')).toBe('fine\n');
  }, 120_000);

  for (const overwrite of ['if-changed', 'always', 'never'] as const) {
    it(`never follows symlinks left by an earlier restore (--overwrite ${overwrite})`, async () => {
      const target = join(work, `links-${overwrite}`);
      await outsideUntouched(target, async () => {
        const first = await restore(symlinkFirst, target);
        expect(first.result.code, first.result.stderr).toBe(0);
        const second = await restore(replaceLinks, target, ['--overwrite', overwrite]);
        expect(second.result.code, second.result.stderr).toBe(0);
      });
      const crafted = join(target, 'crafted');
      if (overwrite === 'never') {
        // Existing entries are kept as they are: still the symlinks, nothing written through them.
        for (const name of ['e', 'f', 'g'])
          expect(lstatSync(join(crafted, name)).isSymbolicLink()).toBe(true);
      } else {
        expect(lstatSync(join(crafted, 'e')).isDirectory()).toBe(true);
        expect(readFileSync(join(crafted, 'e', 'x'), 'utf8')).toBe('planted through e');
        expect(lstatSync(join(crafted, 'f')).isFile()).toBe(true);
        expect(readFileSync(join(crafted, 'f'), 'utf8')).toBe('overwritten\n');
        expect(readFileSync(join(crafted, 'g', 'keep'), 'utf8')).toBe('replaced\n');
      }
    }, 120_000);
  }

  it('does not follow a symlink planted in the target before the restore', async () => {
    const target = join(work, 'planted');
    mkdirSync(target);
    symlinkSync(outside, join(target, 'crafted'));
    await outsideUntouched(target, async () => {
      const { result } = await restore(replaceLinks, target);
      expect(result.code, result.stderr).toBe(0);
    });
    expect(lstatSync(join(target, 'crafted')).isDirectory()).toBe(true);
    expect(readFileSync(join(target, 'crafted', 'e', 'x'), 'utf8')).toBe('planted through e');
  }, 120_000);
});
