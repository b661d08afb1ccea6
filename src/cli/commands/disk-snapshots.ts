import { resolve } from 'node:path';
import type { Command } from 'commander';
import { formatBytes, HoldfastError } from '../../core/index.js';
import { EXIT, type Runner } from '../context.js';
import { localTime, table } from '../format.js';
import { followJob } from '../job-waiter.js';

/** Registers `disk snapshot|snapshots|restore`: named snapshots of single disks. */
export function registerDiskSnapshots(program: Command, run: Runner): void {
  const disk = program
    .command('disk')
    .summary('disk snapshots: named, incremental snapshots of one disk with their own expiry');
  disk
    .command('snapshot')
    .summary('take a named snapshot of one disk into a vault, as a job')
    .description(
      'Captures the disk (an image file or a block device) and stores it in the vault named by --vault, ' +
        'incrementally on the disk’s previous snapshot: only changed blocks are read and stored. It is kept ' +
        '--keep-days days (removed by the vault’s next retention run after that); without it, indefinitely.',
    )
    .argument('<disk>', 'image file or block device')
    .requiredOption('--name <name>', 'name of the snapshot')
    .option('--vault <name>', 'vault on the server to keep it in (required)')
    .option('--keep-days <n>', 'days to keep it')
    .option('--wait', 'follow the job until it ends')
    .action(
      (path: string, flags: { name: string; vault?: string; keepDays?: string; wait?: boolean }) =>
        run(async (ctx) => {
          const vault = flags.vault ?? ctx.options.vault;
          if (vault === undefined)
            throw new HoldfastError(
              'USAGE_INVALID',
              'disk snapshot needs --vault <name>: the vault on the server to keep it in.',
            );
          const keepDays = flags.keepDays === undefined ? undefined : Number(flags.keepDays);
          if (keepDays !== undefined && !(Number.isInteger(keepDays) && keepDays >= 1))
            throw new HoldfastError(
              'USAGE_INVALID',
              `--keep-days takes a whole number of days, not '${flags.keepDays}'.`,
            );
          const api = await ctx.api({ vaultIsName: true });
          const job = await api.snapshotDisk({
            name: flags.name,
            disk: resolve(path),
            vault,
            ...(keepDays !== undefined ? { keepDays } : {}),
          });
          return followJob(ctx, api, job, flags.wait === true);
        }),
    );
  disk
    .command('snapshots')
    .summary('list disk snapshots')
    .action(() =>
      run(async (ctx) => {
        const answer = await (await ctx.api()).listDiskSnapshots();
        if (ctx.options.json) {
          ctx.json(answer);
          return EXIT.ok;
        }
        if (answer.data.length === 0) {
          ctx.say(
            "no disk snapshots: take one with 'holdfast disk snapshot <disk> --name <name> --vault <vault>'",
          );
          return EXIT.ok;
        }
        const rows = answer.data.map((s) => [
          s.name,
          s.disk,
          s.vault,
          formatBytes(s.size),
          localTime(s.createdAt),
          s.expiresAt === null ? 'never' : localTime(s.expiresAt),
        ]);
        for (const line of table(['NAME', 'DISK', 'VAULT', 'SIZE', 'TAKEN', 'EXPIRES'], rows))
          ctx.say(line);
        return EXIT.ok;
      }),
    );
  disk
    .command('delete')
    .summary('delete a disk snapshot before its expiry (refused on an immutable vault)')
    .argument('<snapshot>', 'the snapshot name')
    .action((name: string) =>
      run(async (ctx) => {
        const view = await (await ctx.api()).deleteDiskSnapshot(name);
        if (ctx.options.json) ctx.json(view);
        else
          ctx.say(`disk snapshot ${view.name} deleted; its data goes with the vault's next prune`);
        return EXIT.ok;
      }),
    );
  disk
    .command('restore')
    .summary("restore a disk snapshot's disk under a directory, as a job")
    .argument('<snapshot>', 'the snapshot name')
    .requiredOption('--target <dir>', 'directory to write <dir>/disks/<disk> into')
    .option('--format <format>', 'raw (default) or qcow2')
    .option('--wait', 'follow the job until it ends')
    .action((name: string, flags: { target: string; format?: string; wait?: boolean }) =>
      run(async (ctx) => {
        if (flags.format !== undefined && flags.format !== 'raw' && flags.format !== 'qcow2')
          throw new HoldfastError(
            'USAGE_INVALID',
            `--format takes raw or qcow2, not '${flags.format}'.`,
          );
        const api = await ctx.api();
        const job = await api.restoreDiskSnapshot(name, {
          target: resolve(flags.target),
          ...(flags.format ? { format: flags.format as 'raw' | 'qcow2' } : {}),
        });
        return followJob(ctx, api, job, flags.wait === true);
      }),
    );
}
