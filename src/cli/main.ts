import { writeFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { remoteTraffic } from '../app/direct.js';
import { settleAllocator } from '../engine/index.js';
import { registerBackup } from './commands/backup.js';
import { registerBrowse } from './commands/browse.js';
import { registerItems } from './commands/items.js';
import { registerJobs } from './commands/jobs.js';
import { registerKeys } from './commands/keys.js';
import { registerDiskSnapshots } from './commands/disk-snapshots.js';
import { registerImages } from './commands/images.js';
import { registerMachines } from './commands/machines.js';
import { registerMaintenance } from './commands/maintenance.js';
import { registerPolicies } from './commands/policies.js';
import { registerRestore } from './commands/restore.js';
import { registerServer } from './commands/server.js';
import { registerAudit, registerTokens } from './commands/tokens.js';
import { registerVaults } from './commands/vaults.js';
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
  settleAllocator();
  let exitCode: number = EXIT.ok;
  const program = new Command('holdfast')
    .description('Holdfast: encrypted, deduplicated backups you can restore exactly.')
    .version('0.1.0')
    .option(
      '--vault <location>',
      'direct access to the vault at this location, without the server (default: $HOLDFAST_VAULT)',
    )
    .option('--key-file <file>', 'open the vault with a key file instead of a passphrase')
    .option(
      '--server <url>',
      'the Holdfast server (default: $HOLDFAST_SERVER or http://127.0.0.1:8440)',
    )
    .option(
      '--token-file <file>',
      'API token for the server (default: $HOLDFAST_TOKEN, else <data-dir>/admin.token)',
    )
    .option(
      '--data-dir <dir>',
      "the server's data directory (default: $HOLDFAST_DATA_DIR or ~/.local/share/holdfast)",
    )
    .option('--json', 'machine-readable output on stdout')
    .option('--json-progress', 'progress as JSON lines on stderr')
    .option('-q, --quiet', 'no progress, no informational output')
    .option('--debug', 'show the cause chain of errors')
    .addHelpText(
      'after',
      '\nTwo ways to work:\n' +
        '  Through the server (no --vault, no HOLDFAST_VAULT): start `holdfast server`, then name things:\n' +
        '    holdfast vault create main --location /srv/backup/main\n' +
        "    holdfast policy create nightly --schedule 'daily 02:00' --retain-daily 30\n" +
        '    holdfast protect /etc /home --vault main --policy nightly --name web01\n' +
        '    holdfast backup-now web01 --wait; holdfast points web01\n' +
        '    holdfast restore web01 --point latest --target /tmp/r --wait\n' +
        '  Directly on a vault (--vault <location> or HOLDFAST_VAULT), when no server or catalog is left:\n' +
        '    holdfast --vault /srv/backup/main points\n' +
        '    holdfast --vault /srv/backup/main restore latest --target /tmp/r\n' +
        '  A vault NAME is what the server knows; its LOCATION is the directory --vault opens directly.\n' +
        '\nThe passphrase comes from HOLDFAST_PASSWORD, HOLDFAST_PASSWORD_FILE, or a prompt on a terminal.\n' +
        'Exit codes: 0 ok, 1 error, 2 usage, 3 completed with warnings, 4 damage found, 130 interrupted or cancelled.\n' +
        "'holdfast <command> --help' explains each command.",
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
  registerServer(program, run);
  registerVaults(program, run);
  registerPolicies(program, run);
  registerItems(program, run);
  registerMachines(program, run);
  registerImages(program, run);
  registerDiskSnapshots(program, run);
  registerJobs(program, run);
  registerTokens(program, run);
  registerAudit(program, run);
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
  writeTrafficReport();
  return exitCode;
}

/**
 * With `HOLDFAST_BACKEND_STATS=<file>`, writes the requests and bytes this command sent to
 * object storage there as JSON (the benchmark reports requests per GiB stored from it).
 */
function writeTrafficReport(): void {
  const file = process.env['HOLDFAST_BACKEND_STATS'];
  if (file) writeFileSync(file, JSON.stringify(remoteTraffic()) + '\n');
}
