import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { ItemView } from '../../app/index.js';
import { HoldfastError } from '../../core/index.js';
import { EXIT, type CommandContext, type Runner } from '../context.js';
import { collect, vaultName } from '../flags.js';
import { details, localTime, table } from '../format.js';
import { followJob } from '../job-waiter.js';

interface ProtectFlags {
  vault?: string;
  policy: string;
  name: string;
  exclude: string[];
  oneFileSystem?: boolean;
  agent?: boolean;
}

/** Registers `protect`, `item list|show|stop|undelete|resume|set-policy` and `backup-now`. */
export function registerItems(program: Command, run: Runner): void {
  program
    .command('protect')
    .summary('protect paths on a schedule: a new protected item on the server')
    .description(
      'Creates a protected item: the paths (made absolute) are backed up into the vault named by --vault, ' +
        'on the schedule of --policy, and kept as the policy says. Here --vault is the NAME of a vault on the ' +
        "server ('holdfast vault list'), never a location: protect does not open a vault itself, and " +
        'HOLDFAST_VAULT is not used. The first backup runs on the schedule, or now with backup-now.',
    )
    .argument(
      '[path...]',
      'files or directories to protect (for --agent: what the agent backs up, for the record)',
    )
    .option('--vault <name>', 'name of the vault on the server to back up into (required)')
    .requiredOption('--policy <name>', 'policy to follow')
    .requiredOption('--name <name>', 'name of the new protected item')
    .option('--exclude <glob>', 'leave out matching entries (repeatable)', collect, [])
    .option('-x, --one-file-system', 'do not cross into other mounted file systems')
    .option(
      '--agent',
      'an item an agent backs up on its own host with an append-only token (docs/agents.md): the server runs no backups for it, records the points tagged item:<name> and keeps their retention',
    )
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  holdfast protect /etc /home --vault main --policy nightly --name web01-files\n' +
        "  holdfast protect /srv/www --vault main --policy hourly --name www --exclude '*.tmp' --exclude cache\n" +
        '  holdfast backup-now www --wait\n' +
        '  holdfast protect --agent --vault main --policy nightly --name web02   # then, on web02:\n' +
        '    holdfast backup /srv --tag item:web02 --vault http://<server>:8440/vaults/main   (HOLDFAST_TOKEN: an --agent-for main token)',
    )
    .action((paths: string[], flags: ProtectFlags) => run((ctx) => protect(ctx, paths, flags)));

  const item = program
    .command('item')
    .summary('manage protected items: list, show, stop, undelete, resume, set-policy');
  item
    .command('list')
    .summary('list protected items')
    .action(() => run(list));
  item
    .command('show')
    .summary('show one protected item')
    .argument('<name>', 'item name')
    .action((name: string) =>
      run(async (ctx) => printItem(ctx, await (await ctx.api()).getItem(name), undefined)),
    );
  item
    .command('stop')
    .summary('stop protection: no more backups; points are kept, or soft-deleted')
    .description(
      'Stops scheduled backups of the item. Its recovery points are kept (and expire by the policy) unless ' +
        '--delete-data is given: then they are soft-deleted, kept for the vault’s soft-delete days and ' +
        "recoverable with 'item undelete' until then.",
    )
    .argument('<name>', 'item name')
    .option('--delete-data', 'also delete its recovery points (soft delete)')
    .action((name: string, flags: { deleteData?: boolean }) =>
      run(async (ctx) => {
        const body = flags.deleteData ? { deleteData: true } : {};
        return printItem(ctx, await (await ctx.api()).stopItem(name, body), 'stopped');
      }),
    );
  item
    .command('undelete')
    .summary("bring back a soft-deleted item and its points; 'item resume' then protects it again")
    .argument('<name>', 'item name')
    .action((name: string) =>
      run(async (ctx) => printItem(ctx, await (await ctx.api()).undeleteItem(name), 'undeleted')),
    );
  item
    .command('resume')
    .summary('resume protection of a stopped item')
    .argument('<name>', 'item name')
    .action((name: string) =>
      run(async (ctx) => printItem(ctx, await (await ctx.api()).resumeItem(name), 'resumed')),
    );
  item
    .command('set-policy')
    .summary('make an item follow another policy')
    .argument('<name>', 'item name')
    .argument('<policy>', 'policy name')
    .action((name: string, policy: string) =>
      run(async (ctx) =>
        printItem(ctx, await (await ctx.api()).setItemPolicy(name, policy), 'updated'),
      ),
    );

  program
    .command('backup-now')
    .summary('back up a protected item now, outside its schedule')
    .description(
      'Starts a backup job for the item on the server. Without --wait it prints the job and returns; with ' +
        '--wait it shows the job’s progress and ends with its outcome (exit 0, 3 with warnings, 1 failed, ' +
        '130 cancelled). Ctrl-C while waiting stops the waiting, not the job.',
    )
    .argument('<item>', 'name of the protected item')
    .option('--wait', 'follow the job until it ends')
    .addHelpText(
      'after',
      '\nExamples:\n  holdfast backup-now www --wait\n  holdfast --json backup-now www   # the queued job',
    )
    .action((name: string, flags: { wait?: boolean }) =>
      run(async (ctx) => {
        const api = await ctx.api();
        return followJob(ctx, api, await api.backupNow(name), flags.wait === true);
      }),
    );
}

async function protect(ctx: CommandContext, paths: string[], flags: ProtectFlags): Promise<number> {
  // --vault is also the global option for a vault location, so commander hands it to the
  // program; here it can only be a name. HOLDFAST_VAULT (a location) is deliberately not read.
  const vault = flags.vault ?? ctx.options.vault;
  if (vault === undefined) {
    throw new HoldfastError(
      'USAGE_INVALID',
      "protect needs --vault <name>: the vault on the server to back up into (see 'holdfast vault list').",
    );
  }
  if (paths.length === 0 && flags.agent !== true)
    throw new HoldfastError(
      'USAGE_INVALID',
      'protect needs the paths to back up (or --agent for an item an agent backs up itself).',
    );
  const api = await ctx.api({ vaultIsName: true });
  const view = await api.protect({
    name: flags.name,
    paths: paths.map((p) => resolve(p)),
    ...(flags.exclude.length > 0 ? { excludes: flags.exclude } : {}),
    ...(flags.oneFileSystem ? { oneFileSystem: true } : {}),
    ...(flags.agent ? { agent: true } : {}),
    vault: vaultName(vault, 'protect --vault'),
    policy: flags.policy,
  });
  return printItem(ctx, view, 'protected');
}

async function list(ctx: CommandContext): Promise<number> {
  const answer = await (await ctx.api()).listItems();
  if (ctx.options.json) {
    ctx.json(answer);
    return EXIT.ok;
  }
  if (answer.data.length === 0) {
    ctx.say(
      "no protected items: add one with 'holdfast protect <path>... --vault <name> --policy <name> --name <item>'",
    );
    return EXIT.ok;
  }
  const rows = answer.data.map((i) => [
    i.name,
    i.state.replace(/_/g, '-'),
    i.vault,
    i.policy ?? '-',
    String(i.points),
    localTime(i.lastSuccessAt),
    localTime(i.nextRunAt),
  ]);
  const headers = ['NAME', 'STATE', 'VAULT', 'POLICY', 'POINTS', 'LAST SUCCESS', 'NEXT RUN'];
  for (const line of table(headers, rows)) ctx.say(line);
  return EXIT.ok;
}

function printItem(ctx: CommandContext, i: ItemView, change: string | undefined): number {
  if (ctx.options.json) {
    ctx.json(i);
    return EXIT.ok;
  }
  if (change !== undefined) ctx.say(`item ${i.name} ${change}`);
  const lines = details([
    ['item', change === undefined ? i.name : undefined],
    ['state', i.state.replace(/_/g, '-')],
    ['workload', i.workload],
    ['paths', i.paths.join(' ')],
    ['excludes', i.excludes.length > 0 ? i.excludes.join(' ') : undefined],
    ['vault', i.vault],
    ['policy', i.policy ?? '-'],
    ['points', String(i.points)],
    ['last backup', localTime(i.lastBackupAt)],
    ['last success', localTime(i.lastSuccessAt)],
    ['next run', localTime(i.nextRunAt)],
    ['deleted', i.deletedAt !== null ? localTime(i.deletedAt) : undefined],
    ['purged after', i.purgeAt !== null ? localTime(i.purgeAt) : undefined],
    ['created', localTime(i.createdAt)],
  ]);
  for (const line of lines) ctx.say(change === undefined ? line : `  ${line}`);
  return EXIT.ok;
}
