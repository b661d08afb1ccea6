import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { listPoints, matchesFilter } from '../../app/index.js';
import { describeError, formatBytes, HoldfastError } from '../../core/index.js';
import {
  acquireLock,
  Archiver,
  createBlobSealer,
  parseExcludeFile,
  scanTotals,
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
  const lock = await acquireLock(vault, {
    exclusive: false,
    purpose: 'backup',
    waitMs: 10 * 60_000,
    signal: ctx.signal,
    onWait: (h) =>
      ctx.info(`waiting for the vault lock held by ${h.purpose} (pid ${h.pid} on ${h.host})`),
  });
  const sealer = createBlobSealer(vault.keys.encryption, { level: vault.config.compressionLevel });
  const errors: Array<{ path: string; error: string }> = [];
  try {
    const parent = flags.force
      ? undefined
      : (await listPoints(vault, () => undefined))
          .filter((p) => matchesFilter(p, { host, paths: absolute }))
          .pop();
    const archiver = new Archiver(vault, {
      paths: absolute,
      excludes,
      tags: flags.tag,
      host,
      sealer,
      signal: ctx.signal,
      ...(flags.oneFileSystem ? { oneFileSystem: true } : {}),
      ...(parent ? { parent } : {}),
      program: 'holdfast 0.1.0',
      onError: (path, error) => {
        errors.push({ path, error: describeError(error) });
        ctx.warn(`${path}: ${describeError(error)}`);
      },
    });
    const totals: ScanTotals = { files: 0, bytes: 0, done: false };
    if (ctx.progress !== 'none')
      void scanTotals(
        absolute,
        { excludes, oneFileSystem: flags.oneFileSystem === true, signal: ctx.signal },
        totals,
      );
    const reporter = new ProgressReporter(ctx.progress, () => ({
      phase: 'backup',
      items: archiver.progress.files,
      bytes: archiver.progress.bytes,
      totalItems: totals.done ? totals.files : undefined,
      totalBytes: totals.done ? totals.bytes : undefined,
      errors: archiver.progress.errors,
      current: archiver.progress.currentFile,
    })).start();
    let point;
    try {
      point = await archiver.run();
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
  } finally {
    await sealer.close();
    await lock.release();
  }
}
