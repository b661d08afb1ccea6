import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { ItemView, MachineInput } from '../../app/index.js';
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
  machine?: boolean;
  disk: string[];
  config: string[];
  excludeDisk: string[];
  preScript?: string;
  postScript?: string;
  scriptTimeout?: string;
  scriptRetries?: string;
  continueOnScriptFailure?: boolean;
  freezeCommand?: string;
  fsfreeze: string[];
  qemuMonitor?: string;
}

/** Registers `protect`, `item list|show|stop|undelete|resume|set-policy` and `backup-now`. */
export function registerItems(program: Command, run: Runner): void {
  program
    .command('protect')
    .summary('protect paths or a machine on a schedule: a new protected item on the server')
    .description(
      'Creates a protected item: the paths (made absolute) are backed up into the vault named by --vault, ' +
        'on the schedule of --policy, and kept as the policy says. Here --vault is the NAME of a vault on the ' +
        "server ('holdfast vault list'), never a location: protect does not open a vault itself, and " +
        'HOLDFAST_VAULT is not used. The first backup runs on the schedule, or now with backup-now.\n\n' +
        'With --machine, the item is a machine: its disks (image files, raw or qcow2, or block devices; ' +
        '--disk, repeatable, each <path> or <name>=<path>) are captured at one instant and backed up ' +
        'block by block, only changed blocks after the first time, with its configuration files (--config) ' +
        'beside them. Consistency (docs/disks.md): application-consistent when the pre-snapshot script ' +
        'succeeds; file-system-consistent when a freeze (--freeze-command or --fsfreeze) held the file ' +
        'systems still; crash-consistent otherwise. Scripts must be owned by root and writable by no one else.',
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
    .option('--machine', 'protect a machine: the disks given with --disk, captured together')
    .option(
      '--disk <path>',
      'a disk of the machine: <path> or <name>=<path> (repeatable)',
      collect,
      [],
    )
    .option(
      '--config <file>',
      "a machine configuration file kept beside the disks, e.g. libvirt's domain XML (repeatable)",
      collect,
      [],
    )
    .option('--exclude-disk <name>', 'leave this disk out of the points (repeatable)', collect, [])
    .option(
      '--pre-script <file>',
      'run before the snapshot to quiesce applications (with --post-script)',
    )
    .option('--post-script <file>', 'run after the snapshot, always once the pre script succeeded')
    .option('--script-timeout <seconds>', 'how long each script may run (default 60)')
    .option('--script-retries <n>', 'further attempts of a failing script (default 0)')
    .option(
      '--continue-on-script-failure',
      'when the pre script fails, take a file-system- or crash-consistent point instead of failing',
    )
    .option(
      '--freeze-command <file>',
      "run as '<file> freeze' and '<file> thaw' around the snapshot",
    )
    .option(
      '--fsfreeze <mountpoint>',
      'freeze this mounted file system with fsfreeze around the snapshot (repeatable)',
      collect,
      [],
    )
    .option(
      '--qemu-monitor <socket>',
      'the QMP socket of the QEMU running the machine: its dirty bitmaps tell each backup which blocks changed, so only those are read (docs/disks.md)',
    )
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  holdfast protect /etc /home --vault main --policy nightly --name web01-files\n' +
        '  holdfast protect --machine --disk /var/lib/libvirt/images/db01.qcow2 --disk data=/dev/vg0/db01-data \\\n' +
        '      --config /etc/libvirt/qemu/db01.xml --pre-script /etc/holdfast/db01-pre --post-script /etc/holdfast/db01-post \\\n' +
        '      --vault main --policy nightly --name db01\n' +
        '  holdfast protect --machine --disk /srv/vm/app01.qcow2 --qemu-monitor /run/holdfast/app01.qmp \\\n' +
        '      --vault main --policy nightly --name app01   # only blocks QEMU saw written are read\n' +
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
  if (flags.machine === true) {
    const api = await ctx.api({ vaultIsName: true });
    const view = await api.protect({
      name: flags.name,
      workload: 'machine',
      machine: machineInput(paths, flags),
      vault: vaultName(vault, 'protect --vault'),
      policy: flags.policy,
    });
    return printItem(ctx, view, 'protected');
  }
  if (flags.disk.length > 0)
    throw new HoldfastError('USAGE_INVALID', '--disk protects a machine: add --machine.');
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

/** The machine part of a protect request, from the flags (paths made absolute). */
function machineInput(paths: string[], flags: ProtectFlags): MachineInput {
  if (paths.length > 0 || flags.agent === true)
    throw new HoldfastError(
      'USAGE_INVALID',
      `A machine is given by its disks: use --disk ${paths[0] ?? '<path>'} instead of a path.`,
    );
  const absolute = (spec: string): string => {
    const at = spec.indexOf('=');
    return at > 0 && !spec.slice(0, at).includes('/')
      ? `${spec.slice(0, at)}=${resolve(spec.slice(at + 1))}`
      : resolve(spec);
  };
  return {
    disks: flags.disk.map(absolute),
    ...(flags.excludeDisk.length > 0 ? { excludeDisks: flags.excludeDisk } : {}),
    ...(flags.config.length > 0 ? { configs: flags.config.map((c) => resolve(c)) } : {}),
    ...(flags.preScript ? { preScript: resolve(flags.preScript) } : {}),
    ...(flags.postScript ? { postScript: resolve(flags.postScript) } : {}),
    ...(flags.scriptTimeout
      ? { scriptTimeoutSeconds: count(flags.scriptTimeout, '--script-timeout') }
      : {}),
    ...(flags.scriptRetries
      ? { scriptRetries: count(flags.scriptRetries, '--script-retries') }
      : {}),
    ...(flags.continueOnScriptFailure ? { continueOnScriptFailure: true } : {}),
    ...(flags.freezeCommand ? { freezeCommand: resolve(flags.freezeCommand) } : {}),
    ...(flags.fsfreeze.length > 0 ? { fsfreeze: flags.fsfreeze.map((m) => resolve(m)) } : {}),
    ...(flags.qemuMonitor ? { qemuMonitor: resolve(flags.qemuMonitor) } : {}),
  };
}

function count(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0)
    throw new HoldfastError('USAGE_INVALID', `${flag} takes a whole number, not '${text}'.`);
  return n;
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
    ['paths', i.machine === null ? i.paths.join(' ') : undefined],
    ...machineDetails(i),
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

/** The lines `item show` adds for a machine. */
function machineDetails(i: ItemView): Array<[string, string | undefined]> {
  const m = i.machine;
  if (m === null) return [];
  return [
    ['disks', m.disks.map((d) => `${d.name}=${d.path}`).join(' ')],
    ['excluded disks', m.excludeDisks.length > 0 ? m.excludeDisks.join(' ') : undefined],
    ['configs', m.configs.length > 0 ? m.configs.join(' ') : undefined],
    ['pre script', m.preScript ?? undefined],
    ['post script', m.postScript ?? undefined],
    [
      'on script failure',
      m.preScript ? (m.continueOnScriptFailure ? 'continue' : 'fail') : undefined,
    ],
    ['freeze', [m.freezeCommand, ...m.fsfreeze].filter(Boolean).join(' ') || undefined],
    ['qemu monitor', m.qemuMonitor ?? undefined],
  ];
}
