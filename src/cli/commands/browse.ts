import type { Command } from 'commander';
import { resolvePoint } from '../../app/direct.js';
import { formatBytes, HoldfastError } from '../../core/index.js';
import {
  BlobReader,
  diffTrees,
  findDirectory,
  walkTree,
  type Point,
  type TreeNode,
} from '../../engine/index.js';
import { EXIT, type CommandContext, type Runner } from '../context.js';
import { POINTS_HELP, serverPoints } from './item-points.js';

/** Registers `points`, `ls` and `diff`: looking at what a vault holds. */
export function registerBrowse(program: Command, run: Runner): void {
  program
    .command('points')
    .summary('list recovery points: of a protected item (server), or in a vault (direct)')
    .description(
      'Without a vault location, lists the points of the protected item <item> as the server knows them ' +
        '(ids to pass to restore --point). With --vault <location> or HOLDFAST_VAULT, reads the vault ' +
        'directly and lists every point in it, no server needed.',
    )
    .argument('[item]', 'protected item (server form)')
    .option('--host <name>', 'direct form: only points of this host')
    .option('--tag <tag>', 'direct form: only points with this tag')
    .option(
      '--from <copy>',
      "server form: secondary lists the points a GRS vault's secondary copy holds now",
    )
    .addHelpText('after', POINTS_HELP)
    .action((item: string | undefined, flags: { host?: string; tag?: string; from?: string }) =>
      run((ctx) => {
        if (item === undefined && ctx.vaultLocationSource !== undefined) {
          if (flags.from !== undefined)
            throw new HoldfastError(
              'USAGE_INVALID',
              '--from is for the server form; read a secondary copy directly with --vault <its location>.',
            );
          return points(ctx, flags);
        }
        return serverPoints(ctx, item, flags);
      }),
    );

  program
    .command('ls')
    .summary('list the entries of a recovery point')
    .argument('<point>', "'latest' or a point id")
    .argument('[path]', 'directory inside the point', '/')
    .option('-r, --recursive', 'list everything below the path')
    .option('-l, --long', 'show mode, owner, size and time')
    .action((ref: string, path: string, flags: { recursive?: boolean; long?: boolean }) =>
      run((ctx) => ls(ctx, ref, path, flags)),
    );

  program
    .command('diff')
    .summary('show what changed between two recovery points')
    .argument('<from>', 'older point')
    .argument('<to>', 'newer point')
    .addHelpText(
      'after',
      '\nEach line: + added, - removed, M content changed, T type changed, U metadata only.',
    )
    .action((a: string, b: string) => run((ctx) => diff(ctx, a, b)));
}

function pointRow(p: Point): Record<string, unknown> {
  return {
    id: p.id,
    time: p.time,
    host: p.host,
    user: p.user,
    paths: p.paths,
    tags: p.tags,
    parent: p.parent ?? null,
    consistency: p.consistency,
    stats: p.stats,
  };
}

async function points(
  ctx: CommandContext,
  flags: { host?: string; tag?: string },
): Promise<number> {
  const vault = await ctx.openVault({ loadIndex: false });
  const all = (await ctx.readablePoints(vault)).filter(
    (p) =>
      (flags.host === undefined || p.host === flags.host) &&
      (flags.tag === undefined || p.tags.includes(flags.tag)),
  );
  if (ctx.options.json) {
    ctx.json(all.map(pointRow));
    return EXIT.ok;
  }
  if (all.length === 0) ctx.say('no recovery points');
  for (const p of all) {
    const tags = p.tags.length ? ` [${p.tags.join(',')}]` : '';
    ctx.say(
      `${p.id.slice(0, 12)}  ${p.time.replace('T', ' ').slice(0, 19)}  ${p.host}  ${formatBytes(p.stats.bytes).padStart(11)}  ${p.paths.join(' ')}${tags}`,
    );
  }
  if (all.length) ctx.say(`${all.length} recovery points`);
  return EXIT.ok;
}

function modeString(node: TreeNode): string {
  const kind = {
    file: '-',
    dir: 'd',
    symlink: 'l',
    fifo: 'p',
    socket: 's',
    chardev: 'c',
    blockdev: 'b',
  }[node.type];
  const bits = 'rwxrwxrwx'
    .split('')
    .map((c, i) => ((node.mode >> (8 - i)) & 1 ? c : '-'))
    .join('');
  return kind + bits;
}

async function ls(
  ctx: CommandContext,
  ref: string,
  path: string,
  flags: { recursive?: boolean; long?: boolean },
): Promise<number> {
  const vault = await ctx.openVaultForReading();
  const point = resolvePoint(await ctx.readablePoints(vault), ref);
  const reader = new BlobReader(vault);
  const { tree } = await findDirectory(reader, point.tree, path);
  const rows: Array<Record<string, unknown>> = [];
  for await (const { path: p, node } of walkTree(
    reader,
    tree,
    path,
    flags.recursive === true,
    ctx.signal,
  )) {
    const mtime = new Date(node.mtime[0] * 1000).toISOString();
    if (ctx.options.json) {
      rows.push({
        path: p,
        type: node.type,
        mode: node.mode,
        uid: node.uid,
        gid: node.gid,
        user: node.user ?? null,
        group: node.group ?? null,
        size: node.size,
        mtime,
        target: node.target?.toString() ?? null,
      });
    } else if (flags.long) {
      const owner = `${node.user ?? node.uid}/${node.group ?? node.gid}`;
      ctx.say(
        `${modeString(node)} ${owner.padEnd(14)} ${String(node.size).padStart(12)} ${mtime.slice(0, 19).replace('T', ' ')} ${p}${node.target ? ` -> ${node.target.toString()}` : ''}`,
      );
    } else {
      ctx.say(p);
    }
  }
  if (ctx.options.json) ctx.json(rows);
  return EXIT.ok;
}

const SIGNS = {
  added: '+',
  removed: '-',
  modified: 'M',
  'type-changed': 'T',
  metadata: 'U',
} as const;

async function diff(ctx: CommandContext, a: string, b: string): Promise<number> {
  const vault = await ctx.openVaultForReading();
  const all = await ctx.readablePoints(vault);
  const from = resolvePoint(all, a);
  const to = resolvePoint(all, b);
  const changes: Array<{ path: string; change: string }> = [];
  for await (const change of diffTrees(new BlobReader(vault), from.tree, to.tree, '/')) {
    if (ctx.options.json) changes.push(change);
    else ctx.say(`${SIGNS[change.change]}    ${change.path}`);
  }
  if (ctx.options.json) ctx.json({ from: from.id, to: to.id, changes });
  return EXIT.ok;
}
