import type { Command } from 'commander';
import type { PolicyBody, PolicyView } from '../../app/index.js';
import { HoldfastError } from '../../core/index.js';
import { EXIT, type CommandContext, type Runner } from '../context.js';
import { defined, wholeNumber } from '../flags.js';
import { details, localTime, table } from '../format.js';

interface PolicyFlags {
  schedule?: string;
  timezone?: string;
  snapshotDays?: string;
  retainDaily?: string;
  retainWeekly?: string;
  retainMonthly?: string;
  retainYearly?: string;
}

const SCHEDULE_HELP =
  "when to back up: 'daily 02:00', 'weekly mon,thu 22:00', 'every 4h from 08:00 for 24h', or a cron expression";

const EXAMPLES =
  '\nExamples:\n' +
  "  holdfast policy create nightly --schedule 'daily 02:00' --timezone Europe/Paris --retain-daily 30 --retain-weekly 12\n" +
  "  holdfast policy create office-hours --schedule 'every 4h from 08:00 for 12h' --retain-daily 7 --snapshot-days 2\n" +
  "  holdfast policy create custom --schedule '30 1 * * 1-5' --retain-daily 14 --retain-monthly 12\n" +
  '  holdfast policy update nightly --retain-yearly 5   # the other settings stay';

/** Adds the options a policy is made of; `required` makes --schedule and --retain-daily required. */
function policyOptions(command: Command, required: boolean): Command {
  const schedule = required ? command.requiredOption.bind(command) : command.option.bind(command);
  schedule('--schedule <text>', SCHEDULE_HELP);
  command
    .option('--timezone <tz>', 'IANA time zone of the schedule, e.g. Europe/Berlin (default: UTC)')
    .option('--snapshot-days <n>', 'days to keep instant-restore snapshots (1-5; more: enhanced)');
  const daily = required ? command.requiredOption.bind(command) : command.option.bind(command);
  daily('--retain-daily <n>', 'keep the newest point of each of the last n days');
  return command
    .option('--retain-weekly <n>', 'keep the newest point of each of the last n weeks')
    .option('--retain-monthly <n>', 'keep the newest point of each of the last n months')
    .option('--retain-yearly <n>', 'keep the newest point of each of the last n years');
}

/** Registers `policy create|list|show|update|delete`. */
export function registerPolicies(program: Command, run: Runner): void {
  const policy = program
    .command('policy')
    .summary('manage backup policies: when to back up, how long to keep')
    .description(
      'A policy says when protected items are backed up (a schedule in a time zone) and how long their points are kept: the newest point of each of the last N days, weeks, months and years (GFS), and instant-restore snapshots for N days. Each protected item follows one policy.',
    );

  policyOptions(
    policy.command('create').summary('create a policy').argument('<name>', 'policy name'),
    true,
  )
    .addHelpText('after', EXAMPLES)
    .action((name: string, flags: PolicyFlags) => run((ctx) => create(ctx, name, flags)));

  policy
    .command('list')
    .summary('list policies')
    .action(() => run(list));

  policy
    .command('show')
    .summary('show one policy')
    .argument('<name>', 'policy name')
    .action((name: string) =>
      run(async (ctx) => printPolicy(ctx, await (await ctx.api()).getPolicy(name), undefined)),
    );

  policyOptions(
    policy
      .command('update')
      .summary('change a policy; settings not given stay as they are')
      .argument('<name>', 'policy name'),
    false,
  )
    .addHelpText('after', EXAMPLES)
    .action((name: string, flags: PolicyFlags) => run((ctx) => update(ctx, name, flags)));

  policy
    .command('delete')
    .summary('delete a policy (refused while items follow it)')
    .argument('<name>', 'policy name')
    .action((name: string) => run((ctx) => remove(ctx, name)));
}

function retentionOf(flags: PolicyFlags): Record<string, number> {
  return {
    ...defined('daily', wholeNumber('retain-daily', flags.retainDaily)),
    ...defined('weekly', wholeNumber('retain-weekly', flags.retainWeekly)),
    ...defined('monthly', wholeNumber('retain-monthly', flags.retainMonthly)),
    ...defined('yearly', wholeNumber('retain-yearly', flags.retainYearly)),
  };
}

async function create(ctx: CommandContext, name: string, flags: PolicyFlags): Promise<number> {
  const view = await (
    await ctx.api()
  ).createPolicy({
    name,
    schedule: flags.schedule ?? '',
    ...defined('timezone', flags.timezone),
    ...defined('snapshotDays', wholeNumber('snapshot-days', flags.snapshotDays)),
    retention: retentionOf(flags),
  });
  return printPolicy(ctx, view, 'created');
}

async function update(ctx: CommandContext, name: string, flags: PolicyFlags): Promise<number> {
  const retention = retentionOf(flags);
  const snapshotDays = wholeNumber('snapshot-days', flags.snapshotDays);
  const given =
    flags.schedule !== undefined ||
    flags.timezone !== undefined ||
    snapshotDays !== undefined ||
    Object.keys(retention).length > 0;
  if (!given) {
    throw new HoldfastError(
      'USAGE_INVALID',
      "Nothing to change: give --schedule, --timezone, --snapshot-days or --retain-*; see 'holdfast policy update --help'.",
    );
  }
  // PUT replaces the whole policy: start from what the server has, change what was given.
  const api = await ctx.api();
  const current = await api.getPolicy(name);
  const body: PolicyBody = {
    schedule: flags.schedule ?? currentSchedule(current),
    timezone: flags.timezone ?? current.timezone,
    snapshotDays: snapshotDays ?? current.snapshotDays,
    retention: { ...current.retention, ...retention },
  };
  return printPolicy(ctx, await api.replacePolicy(name, body), 'updated');
}

/** The schedule as the server has it: its object form when it has one, else its text. */
function currentSchedule(p: PolicyView): PolicyBody['schedule'] {
  const s = p.schedule;
  return typeof s === 'object' && s !== null && !Array.isArray(s)
    ? (s as Record<string, unknown>)
    : p.scheduleText;
}

function retentionText(p: PolicyView): string {
  const rules = Object.entries(p.retention).map(([unit, n]) => `${unit} ${n}`);
  return rules.length > 0 ? rules.join(', ') : '-';
}

async function list(ctx: CommandContext): Promise<number> {
  const answer = await (await ctx.api()).listPolicies();
  if (ctx.options.json) {
    ctx.json(answer);
    return EXIT.ok;
  }
  if (answer.data.length === 0) {
    ctx.say("no policies: create one with 'holdfast policy create <name> --schedule <text> ...'");
    return EXIT.ok;
  }
  const rows = answer.data.map((p) => [
    p.name,
    p.scheduleText,
    p.timezone,
    retentionText(p),
    String(p.snapshotDays),
    String(p.items),
  ]);
  const headers = ['NAME', 'SCHEDULE', 'TIMEZONE', 'RETENTION', 'SNAPSHOT DAYS', 'ITEMS'];
  for (const line of table(headers, rows)) ctx.say(line);
  return EXIT.ok;
}

function printPolicy(ctx: CommandContext, p: PolicyView, change: string | undefined): number {
  if (ctx.options.json) {
    ctx.json(p);
    return EXIT.ok;
  }
  if (change !== undefined) ctx.say(`policy ${p.name} ${change}`);
  const lines = details([
    ['policy', change === undefined ? p.name : undefined],
    ['schedule', p.scheduleText],
    ['timezone', p.timezone],
    ['retention', retentionText(p)],
    ['snapshots', `${p.snapshotDays} days (${p.tier})`],
    ['items', String(p.items)],
    ['created', localTime(p.createdAt)],
    ['updated', localTime(p.updatedAt)],
  ]);
  for (const line of lines) ctx.say(change === undefined ? line : `  ${line}`);
  return EXIT.ok;
}

async function remove(ctx: CommandContext, name: string): Promise<number> {
  await (await ctx.api()).deletePolicy(name);
  if (ctx.options.json) ctx.json({ name, deleted: true });
  else ctx.say(`policy ${name} deleted`);
  return EXIT.ok;
}
