import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { backupFiles, listPoints, matchesFilter } from '../../app/direct.js';
import { describeError, formatBytes, HoldfastError } from '../../core/index.js';
import {
  parseExcludeFile,
  scanTotals,
  type BackupProgress,
  type ScanTotals,
} from '../../engine/index.js';
import { EXIT, type CommandContext } from '../context.js';
import { ProgressReporter } from '../progress.js';

interface BackupFlags {
  exclude: string[];
  excludeFile: string[];
  oneFileSystem?: boolean;
  tag: string[];
  host?: string;
  force?: boolean;
}

/** Registers `holdfast backup`. */
export function registerBackup(
  program: Command,
  run: (fn: (ctx: CommandContext) => Promise<number>) => Promise<void>,
): void {
  program
    .command('backup')
    .summary('back up files and directories into a new recovery point')
    .description(
      'Backs up the given paths into a new recovery point. Unchanged files (same size, mtime, ctime and inode as ' +
        'in the previous point of the same paths and host) are not read again. Files that cannot be read are ' +
        'reported and left out; the backup still completes, with exit code 3.',
    )
    .argument('<path...>', 'files or directories to back up')
    .option(
      '--exclude <glob>',
      "leave out matching entries (repeatable); 'name' matches at any depth, '/a/b/*' matches paths",
      collect,
      [],
    )
    .option(
      '--exclude-file <file>',
      'read exclude patterns from a file, one per line (repeatable)',
      collect,
      [],
    )
    .option('-x, --one-file-system', 'do not cross into other mounted file systems')
    .option('--tag <tag>', 'tag the recovery point (repeatable)', collect, [])
    .option('--host <name>', "record this host name instead of the machine's")
    .option('--force', 'read every file again, ignoring the previous point')
    .addHelpText(
      'after',
      "\nExamples:\n  holdfast backup /etc /home --exclude node_modules --exclude '*.tmp' --tag nightly\n  holdfast backup /srv --json   # one JSON summary on stdout",
    )
    .action((paths: string[], flags: BackupFlags) => run((ctx) => backup(ctx, paths, flags)));
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

async function backup(ctx: CommandContext, paths: string[], flags: BackupFlags): Promise<number> {
  const excludes = [...flags.exclude];
  for (const file of flags.excludeFile) {
    try {
      excludes.push(...parseExcludeFile(await readFile(file, 'utf8')));
    } catch (error) {
      throw new HoldfastError(
        'USAGE_INVALID',
        `Cannot read exclude file ${file}: ${describeError(error)}`,
        { cause: error },
      );
    }
  }
  const vault = await ctx.openVault();
  const host = flags.host ?? hostname();
  const absolute = paths.map((p) => resolve(p));
  const errors: Array<{ path: string; error: string }> = [];
  const totals: ScanTotals = { files: 0, bytes: 0, done: false };
  if (ctx.progress !== 'none')
    void scanTotals(
      absolute,
      { excludes, oneFileSystem: flags.oneFileSystem === true, signal: ctx.signal },
      totals,
    );
  // The archiver's counters, live: handed over when the backup starts.
  let live: Readonly<BackupProgress> | undefined;
  const reporter = new ProgressReporter(ctx.progress, () => ({
    phase: 'backup',
    items: live?.files ?? 0,
    bytes: live?.bytes ?? 0,
    totalItems: totals.done ? totals.files : undefined,
    totalBytes: totals.done ? totals.bytes : undefined,
    errors: live?.errors ?? 0,
    current: live?.currentFile ?? '',
  })).start();
  let point;
  try {
    point = await backupFiles(vault, {
      paths: absolute,
      excludes,
      oneFileSystem: flags.oneFileSystem === true,
      tags: flags.tag,
      host,
      signal: ctx.signal,
      ...(flags.force
        ? {}
        : {
            findParent: async () =>
              (await listPoints(vault, () => undefined))
                .filter((p) => matchesFilter(p, { host, paths: absolute }))
                .pop(),
          }),
      onLockWait: (h) =>
        ctx.info(`waiting for the vault lock held by ${h.purpose} (pid ${h.pid} on ${h.host})`),
      onProgress: (progress) => (live = progress),
      onError: (path, error) => {
        errors.push({ path, error: describeError(error) });
        ctx.warn(`${path}: ${describeError(error)}`);
      },
    });
  } finally {
    reporter.stop();
  }
  const summary = {
    id: point.id,
    time: point.time,
    host: point.host,
    paths: point.paths,
    tags: point.tags,
    parent: point.parent ?? null,
    ...point.stats,
    errorList: errors,
  };
  if (ctx.options.json) ctx.json(summary);
  else {
    const s = point.stats;
    ctx.say(`recovery point ${point.id.slice(0, 12)} saved`);
    ctx.say(
      `  ${s.files} files, ${s.dirs} dirs, ${formatBytes(s.bytes)} in total; ${s.filesRead} files read`,
    );
    ctx.say(
      `  ${formatBytes(s.newBytes)} new (file content and directory listings), ${formatBytes(s.storedBytes)} stored after compression and encryption`,
    );
    ctx.say(
      `  took ${(s.durationMs / 1000).toFixed(1)}s${s.errors ? `; ${s.errors} entries could not be read (see warnings)` : ''}`,
    );
  }
  return errors.length > 0 ? EXIT.warnings : EXIT.ok;
}
