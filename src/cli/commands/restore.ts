import type { Command } from 'commander';
import { resolvePoint } from '../../app/direct.js';
import { describeError, formatBytes, HoldfastError } from '../../core/index.js';
import {
  acquireLock,
  createBlobOpener,
  OVERWRITE_MODES,
  Restorer,
  verifyRestore,
  type OverwriteMode,
} from '../../engine/index.js';
import { EXIT, type CommandContext, type Runner } from '../context.js';
import { collect } from '../flags.js';
import { ProgressReporter } from '../progress.js';
import {
  refuseServerRestoreFlags,
  RESTORE_HELP,
  serverRestore,
  type ServerRestoreFlags,
} from './item-points.js';

interface RestoreFlags extends ServerRestoreFlags {
  host?: string;
}

/** Registers `holdfast restore`. */
export function registerRestore(program: Command, run: Runner): void {
  program
    .command('restore')
    .summary('restore a recovery point into a directory')
    .description(
      'Without a vault location, asks the server to restore a point of the protected item <item> ' +
        '(--point <id|latest>) as a job; --wait follows it to its end. With --vault <location> or ' +
        'HOLDFAST_VAULT, restores directly from the vault, in this process, no server needed: then the argument ' +
        'is the point.\n\n' +
        'Restores a recovery point (or part of it) under --target, recreating the absolute paths that were backed ' +
        'up below it. Restores sparse files as sparse, hard links, symlinks, empty directories, modes, times and ' +
        '(as root) ownership. Nothing is ever written outside the target. Entries that cannot be restored are ' +
        'listed and the restore goes on (exit code 3). Running the same restore again after an interruption ' +
        'skips files that are already complete (--overwrite if-changed, the default).',
    )
    .argument(
      '<item|point>',
      "server form: the protected item; direct form: 'latest' or a point id (or a unique prefix)",
    )
    .option(
      '--target <dir>',
      'directory to restore into (created if missing); not with --as replace',
    )
    .option('--include <glob>', 'restore only matching entries (repeatable)', collect, [])
    .option('--exclude <glob>', 'leave out matching entries (repeatable)', collect, [])
    .option(
      '--overwrite <mode>',
      `existing files: ${OVERWRITE_MODES.join(' | ')} (default if-changed: compares size and mtime)`,
    )
    .option('--verify', 'read back everything written and compare it with the point')
    .option('--point <id|latest>', 'server form: which point of the item')
    .option(
      '--tier <tier>',
      'server form: auto | snapshot | vault (default: the fastest that has it)',
    )
    .option('--wait', 'server form: follow the restore job until it ends')
    .option(
      '--from <copy>',
      "server form: primary (default) or secondary, a GRS vault's copy at the other site",
    )
    .option('--host <name>', "direct form, with 'latest': the newest point of this host")
    .option(
      '--as <how>',
      'machine items: disks (default: the disks and configuration under --target), new-machine ' +
        '(the same with a new name, UUID and MAC addresses), or replace (over the machine’s own disks, after a safety snapshot)',
    )
    .option('--format <format>', 'machine items, --as disks|new-machine: raw (default) or qcow2')
    .option('--new-name <name>', 'machine items, --as new-machine: the new machine’s name')
    .option('--force', 'machine items, --as replace: even while a process has the disks open')
    .addHelpText(
      'after',
      `${RESTORE_HELP}\n\nExamples:\n` +
        '  holdfast restore www --point latest --target /tmp/r --wait\n' +
        "  holdfast restore www --point rp_3fa2c1 --target /srv/restore --include '/etc/nginx/**' --verify\n" +
        '  holdfast restore db01 --point latest --as disks --format qcow2 --target /srv/restore/db01 --wait\n' +
        '  holdfast restore db01 --point latest --as new-machine --new-name db01-test --target /var/lib/libvirt/images/db01-test --wait\n' +
        '  holdfast restore db01 --point rp_3fa2c1 --as replace --wait     # the machine is shut down\n' +
        '  holdfast --vault /srv/backup/main restore latest --target /tmp/r   # no server',
    )
    .action((arg: string, flags: RestoreFlags) =>
      run((ctx) => {
        if (ctx.vaultLocationSource === undefined) {
          if (flags.host !== undefined) {
            throw new HoldfastError(
              'USAGE_INVALID',
              '--host narrows latest among the points of a vault read directly (--vault <location>); the server form takes --point.',
            );
          }
          checkOverwrite(flags.overwrite);
          return serverRestore(ctx, arg, flags);
        }
        refuseServerRestoreFlags(ctx, flags);
        if (flags.target === undefined)
          throw new HoldfastError(
            'USAGE_INVALID',
            'restore needs --target <dir>: where to restore into.',
          );
        return restore(ctx, arg, { ...flags, target: flags.target });
      }),
    );
}

function checkOverwrite(mode: string | undefined): void {
  if (mode !== undefined && !OVERWRITE_MODES.includes(mode as OverwriteMode)) {
    throw new HoldfastError(
      'USAGE_INVALID',
      `--overwrite must be one of ${OVERWRITE_MODES.join(', ')}.`,
    );
  }
}

async function restore(
  ctx: CommandContext,
  ref: string,
  flags: RestoreFlags & { target: string },
): Promise<number> {
  checkOverwrite(flags.overwrite);
  const overwrite = (flags.overwrite ?? 'if-changed') as OverwriteMode;
  const vault = await ctx.openVaultForReading();
  const point = resolvePoint(
    await ctx.readablePoints(vault),
    ref,
    flags.host !== undefined ? { host: flags.host } : {},
  );
  const lock = await acquireLock(vault, {
    exclusive: false,
    purpose: 'restore',
    waitMs: 10 * 60_000,
    signal: ctx.signal,
  });
  const failures: Array<{ path: string; error: string }> = [];
  const opener = createBlobOpener(vault.keys.encryption);
  try {
    const filter = { include: flags.include, exclude: flags.exclude };
    const restorer = new Restorer(vault, point, {
      target: flags.target,
      ...filter,
      overwrite,
      signal: ctx.signal,
      opener,
      onError: (path, error) => {
        failures.push({ path, error: describeError(error) });
        ctx.warn(`${path}: ${describeError(error)}`);
      },
    });
    const reporter = new ProgressReporter(ctx.progress, () => ({
      phase: 'restore',
      items: restorer.progress.files,
      totalItems: point.stats.files,
      bytes: restorer.progress.bytes,
      totalBytes: point.stats.bytes,
      errors: restorer.progress.errors,
      current: restorer.progress.currentFile,
    })).start();
    let progress;
    try {
      progress = await restorer.run();
    } finally {
      reporter.stop();
    }
    let verified: { checked: number; bytes: number; mismatches: number } | undefined;
    if (flags.verify) {
      let mismatches = 0;
      const result = await verifyRestore(
        vault,
        point,
        flags.target,
        filter,
        (path, reason) => {
          mismatches += 1;
          failures.push({ path, error: `verify: ${reason}` });
          ctx.warn(`verify: ${path}: ${reason}`);
        },
        ctx.signal,
      );
      verified = { ...result, mismatches };
    }
    const summary = {
      point: point.id,
      target: flags.target,
      ...progress,
      currentFile: undefined,
      verified: verified ?? null,
      failures,
    };
    if (ctx.options.json) ctx.json(summary);
    else {
      ctx.say(
        `restored point ${point.id.slice(0, 12)} to ${flags.target}: ${progress.files} files, ${progress.dirs} dirs, ${progress.others} other entries, ${formatBytes(progress.bytes)} written`,
      );
      if (progress.skipped) ctx.say(`  ${progress.skipped} entries already present were skipped`);
      if (verified)
        ctx.say(
          `  verified ${verified.checked} entries (${formatBytes(verified.bytes)} read back): ${verified.mismatches} mismatches`,
        );
      if (failures.length) ctx.say(`  ${failures.length} entries failed (see warnings above)`);
    }
    return failures.length > 0 ? EXIT.warnings : EXIT.ok;
  } finally {
    await opener.close();
    await lock.release();
  }
}
