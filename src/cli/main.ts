import { Command, CommanderError } from 'commander';
import { registerBackup } from './commands/backup.js';
import { registerBrowse } from './commands/browse.js';
import { registerKeys } from './commands/keys.js';
import { registerMaintenance } from './commands/maintenance.js';
import { registerRestore } from './commands/restore.js';
import { CommandContext, EXIT, reportError, type GlobalOptions } from './context.js';

/**
 * A reader that stops early (`holdfast points | head`) closes the pipe: end quietly, as
 * command-line tools do, instead of crashing on the write error.
 */
function exitQuietlyOnClosedPipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw error;
    });
  }
}

/** Runs the holdfast command line with `argv` (without node and script); returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  exitQuietlyOnClosedPipe();
  let exitCode: number = EXIT.ok;
  const program = new Command('holdfast')
    .description('Holdfast: encrypted, deduplicated backups you can restore exactly.')
    .version('0.1.0')
    .option('--vault <location>', 'vault location (default: $HOLDFAST_VAULT)')
    .option('--key-file <file>', 'open the vault with a key file instead of a passphrase')
    .option('--json', 'machine-readable output on stdout')
    .option('--json-progress', 'progress as JSON lines on stderr')
    .option('-q, --quiet', 'no progress, no informational output')
    .option('--debug', 'show the cause chain of errors')
    .addHelpText(
      'after',
      '\nThe passphrase comes from HOLDFAST_PASSWORD, HOLDFAST_PASSWORD_FILE, or a prompt on a terminal.\n' +
        'Exit codes: 0 ok, 1 error, 2 usage, 3 completed with warnings, 4 damage found, 130 interrupted.\n' +
        "Start with 'holdfast init', then 'holdfast backup <path>'; 'holdfast <command> --help' explains each command.",
    )
    .exitOverride()
    .configureOutput({ writeErr: (text) => process.stderr.write(text) });

  const run = async (fn: (ctx: CommandContext) => Promise<number>): Promise<void> => {
    const ctx = new CommandContext(program.opts<GlobalOptions>());
    const onSignal = (): void => ctx.controller.abort(new Error('interrupted'));
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      exitCode = ctx.exitCode(await fn(ctx));
    } catch (error) {
      exitCode = reportError(error, ctx.options.debug === true);
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  };
  registerKeys(program, run);
  registerBackup(program, run);
  registerRestore(program, run);
  registerBrowse(program, run);
  registerMaintenance(program, run);
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    return reportError(error, false);
  }
  return exitCode;
}
