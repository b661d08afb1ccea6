import type { Command } from 'commander';
import { formatDuration } from '../../core/index.js';
import { EXIT, type CommandContext, type Runner } from '../context.js';
import { wholeNumber } from '../flags.js';
import { localTime, table } from '../format.js';
import { jobDetails, jobDuration, stateText } from '../job-report.js';
import { watchJob } from '../job-waiter.js';

interface ListFlags {
  item?: string;
  state?: string;
  type?: string;
  limit?: string;
}

/** Registers `job list|show|watch|cancel`. */
export function registerJobs(program: Command, run: Runner): void {
  const job = program
    .command('job')
    .summary('look at and cancel the server’s jobs (backups, restores, retention)')
    .description(
      'Jobs are the server’s units of work, with a state (queued, running, waiting_retry, completed, ' +
        'completed_with_warnings, failed, cancelled), phases with progress, per-item errors and retries.',
    );

  job
    .command('list')
    .summary('list jobs, newest first')
    .option('--item <name>', 'only jobs of this protected item')
    .option('--state <state>', 'only jobs in this state (e.g. running, failed)')
    .option('--type <type>', 'only jobs of this type (backup, restore, retention, verify)')
    .option('--limit <n>', 'at most n jobs')
    .addHelpText(
      'after',
      '\nExamples:\n  holdfast job list --state failed --limit 20\n  holdfast job list --item www --type backup',
    )
    .action((flags: ListFlags) => run((ctx) => list(ctx, flags)));

  job
    .command('show')
    .summary('show one job: phases, progress, result, attempts, errors')
    .argument('<id>', 'job id')
    .action((id: string) =>
      run(async (ctx) => {
        const view = await (await ctx.api()).getJob(id);
        if (ctx.options.json) ctx.json(view);
        else for (const line of jobDetails(view)) ctx.say(line);
        return EXIT.ok;
      }),
    );

  job
    .command('watch')
    .summary('follow a job until it ends; its outcome is the exit code')
    .description(
      'Shows the job’s progress (phase, items, bytes, rate, ETA) until it ends, then its summary. Exit code: ' +
        '0 completed, 3 completed with warnings, 1 failed, 130 cancelled. Ctrl-C stops watching, not the job.',
    )
    .argument('<id>', 'job id')
    .action((id: string) =>
      run(async (ctx) => {
        const api = await ctx.api();
        return watchJob(ctx, api, await api.getJob(id));
      }),
    );

  job
    .command('cancel')
    .summary('ask the server to cancel a job')
    .description(
      'Asks the server to cancel the job. A running job stops at its next check and writes nothing more; ' +
        'a backup that is cancelled leaves no recovery point. Follow it with job watch.',
    )
    .argument('<id>', 'job id')
    .action((id: string) =>
      run(async (ctx) => {
        const view = await (await ctx.api()).cancelJob(id);
        if (ctx.options.json) ctx.json(view);
        else ctx.say(`cancel requested for job ${view.id} (now ${stateText(view.state)})`);
        return EXIT.ok;
      }),
    );
}

async function list(ctx: CommandContext, flags: ListFlags): Promise<number> {
  const answer = await (
    await ctx.api()
  ).listJobs({
    item: flags.item,
    state: flags.state,
    type: flags.type,
    limit: wholeNumber('limit', flags.limit, 1),
  });
  if (ctx.options.json) {
    ctx.json(answer);
    return EXIT.ok;
  }
  if (answer.data.length === 0) {
    ctx.say('no jobs');
    return EXIT.ok;
  }
  const rows = answer.data.map((j) => {
    const duration = jobDuration(j);
    return [
      j.id,
      j.type,
      stateText(j.state),
      j.item ?? j.vault ?? '-',
      j.trigger,
      localTime(j.createdAt),
      duration !== undefined ? formatDuration(duration) : '-',
      String(j.errorCount),
    ];
  });
  const headers = ['ID', 'TYPE', 'STATE', 'ITEM', 'TRIGGER', 'CREATED', 'DURATION', 'ERRORS'];
  for (const line of table(headers, rows)) ctx.say(line);
  return EXIT.ok;
}
