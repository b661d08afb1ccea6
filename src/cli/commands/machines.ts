import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { DiskExportView } from '../../app/index.js';
import { formatBytes, HoldfastError } from '../../core/index.js';
import { EXIT, type CommandContext, type Runner } from '../context.js';
import { localTime, table } from '../format.js';
import { followJob } from '../job-waiter.js';

/** Registers `browse`, `extract` and `export`: file-level recovery from machine points. */
export function registerMachines(program: Command, run: Runner): void {
  program
    .command('browse')
    .summary('list disks, partitions or files inside a machine point, without restoring it')
    .description(
      'Reads inside a recovery point of a machine item on the server. The path names a disk, then a partition ' +
        '(p1, p2, … as Linux numbers them; left out for a disk without a partition table), then a path in its ' +
        'file system (ext2, ext3, ext4). Without a path: the disks of the point.',
    )
    .argument('<item>', 'the machine item')
    .argument('[path]', '<disk>[/p<N>][/<path in the file system>]', '')
    .option('--point <id|latest>', 'which point of the item', 'latest')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  holdfast browse db01                       # the disks of the newest point\n' +
        '  holdfast browse db01 root --point rp_3fa2   # its partitions\n' +
        '  holdfast browse db01 root/p1/etc/postgresql\n' +
        '  holdfast extract db01 root/p1/etc/postgresql --target /tmp/pg-config --wait',
    )
    .action((item: string, path: string, flags: { point: string }) =>
      run((ctx) => browse(ctx, item, path, flags.point)),
    );

  program
    .command('extract')
    .summary('copy files out of a machine point, without restoring its disks')
    .description(
      'Extracts files and directories (recursively) from the file systems inside a machine point into --target, ' +
        'each under its own name, as a restore job: sparse files stay sparse, symlinks are kept as links and never ' +
        'followed, modes and times are set (owners when root). Paths as for browse.',
    )
    .argument('<item>', 'the machine item')
    .argument('<path...>', '<disk>[/p<N>]/<path in the file system>')
    .requiredOption('--target <dir>', 'directory to extract into (created if missing)')
    .option('--point <id|latest>', 'which point of the item', 'latest')
    .option('--wait', 'follow the job until it ends')
    .action(
      (item: string, paths: string[], flags: { target: string; point: string; wait?: boolean }) =>
        run(async (ctx) => {
          const api = await ctx.api();
          const job = await api.restore(item, {
            point: flags.point,
            target: resolve(flags.target),
            as: 'files',
            paths,
          });
          return followJob(ctx, api, job, flags.wait === true);
        }),
    );

  const exports = program
    .command('export')
    .summary("serve a machine point's disks read-only over NBD, to mount them")
    .description(
      "Starts a read-only NBD export of every disk of a machine point, on the server's loopback address " +
        '(127.0.0.1): an administrator on the server mounts a disk with nbd-client, qemu-nbd or nbdfuse ' +
        '(docs/disks-nbd.md). The export holds the vault against prune while it is up and ends after --hours ' +
        "(default 4) or 'holdfast export stop <id>'.",
    )
    .argument('[item]', 'the machine item')
    .option('--point <id|latest>', 'which point of the item', 'latest')
    .option('--hours <n>', 'how long the export stays up (default 4, at most 72)')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  holdfast export db01 --point rp_3fa2\n' +
        '  nbdfuse /mnt/db01-root nbd://127.0.0.1:<port>/root &   # then mount the partition read-only\n' +
        '  holdfast export list\n' +
        '  holdfast export stop exp_0123456789abcdef',
    )
    .action((item: string | undefined, flags: { point: string; hours?: string }) =>
      run(async (ctx) => {
        if (item === undefined)
          throw new HoldfastError(
            'USAGE_INVALID',
            "Name the machine item to export (or 'export list').",
          );
        const hours = flags.hours === undefined ? undefined : Number(flags.hours);
        if (hours !== undefined && !(hours > 0 && hours <= 72))
          throw new HoldfastError(
            'USAGE_INVALID',
            `--hours takes a number from 0 to 72, not '${flags.hours}'.`,
          );
        const view = await (await ctx.api()).startExport(item, flags.point, hours);
        return printExport(ctx, view, 'started');
      }),
    );
  exports
    .command('list')
    .summary('list the running exports')
    .action(() =>
      run(async (ctx) => {
        const answer = await (await ctx.api()).listExports();
        if (ctx.options.json) {
          ctx.json(answer);
          return EXIT.ok;
        }
        if (answer.data.length === 0) {
          ctx.say('no exports running');
          return EXIT.ok;
        }
        const rows = answer.data.map((e) => [
          e.id,
          e.item,
          e.point,
          Object.values(e.urls).join(' '),
          localTime(e.expiresAt),
        ]);
        for (const line of table(['ID', 'ITEM', 'POINT', 'URLS', 'ENDS'], rows)) ctx.say(line);
        return EXIT.ok;
      }),
    );
  exports
    .command('stop')
    .summary('stop an export')
    .argument('<id>', 'the export id (exp_…)')
    .action((id: string) =>
      run(async (ctx) => printExport(ctx, await (await ctx.api()).stopExport(id), 'stopped')),
    );
}

async function browse(
  ctx: CommandContext,
  item: string,
  path: string,
  point: string,
): Promise<number> {
  const answer = await (await ctx.api()).browseMachine(item, point, path);
  if (ctx.options.json) {
    ctx.json(answer);
    return EXIT.ok;
  }
  const rows = answer.entries.map((e) => [
    e.type,
    formatBytes(e.size),
    e.mtime ? localTime(e.mtime) : '',
    e.name + (e.detail ? (e.type === 'symlink' ? ` -> ${e.detail}` : `  (${e.detail})`) : ''),
  ]);
  for (const line of table(['TYPE', 'SIZE', 'MODIFIED', 'NAME'], rows)) ctx.say(line);
  return EXIT.ok;
}

function printExport(ctx: CommandContext, view: DiskExportView, change: string): number {
  if (ctx.options.json) {
    ctx.json(view);
    return EXIT.ok;
  }
  ctx.say(
    `export ${view.id} ${change}: ${view.item} point ${view.point}, until ${localTime(view.expiresAt)}`,
  );
  for (const [disk, url] of Object.entries(view.urls)) ctx.say(`  ${disk}  ${url}`);
  return EXIT.ok;
}
