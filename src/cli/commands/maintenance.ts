import type { Command } from 'commander';
import { forgetPointIds, listPoints, openVault, resolvePoint } from '../../app/direct.js';
import { formatBytes, HoldfastError } from '../../core/index.js';
import {
  checkVault,
  copyPoints,
  createBlobSealer,
  prune,
  selectForget,
  type ForgetPolicy,
  type Point,
} from '../../engine/index.js';
import { EXIT, type CommandContext } from '../context.js';
import { readCredential } from '../credentials.js';
import { ProgressReporter } from '../progress.js';

type Runner = (fn: (ctx: CommandContext) => Promise<number>) => Promise<void>;

interface ForgetFlags {
  keepLast?: string;
  keepHourly?: string;
  keepDaily?: string;
  keepWeekly?: string;
  keepMonthly?: string;
  keepYearly?: string;
  keepTag: string[];
  host?: string;
  timeZone: string;
  dryRun?: boolean;
  prune?: boolean;
  lockWait: string;
}

/** Registers `check`, `forget`, `prune` and `copy`. */
export function registerMaintenance(program: Command, run: Runner): void {
  program
    .command('check')
    .summary('verify the vault: structure, and with --read-data the data itself')
    .description(
      'Checks that every index, pack and recovery point is present and consistent. With --read-data every pack ' +
        '(or a random sample, e.g. --read-data=10%) is downloaded and every blob authenticated. Damage is reported ' +
        'as which packs, which blobs, and which files in which recovery points are affected. Exit code 4 on damage.',
    )
    .option('--read-data [percent]', 'download and authenticate packs: all, or a sample like 10%')
    .action((flags: { readData?: string | boolean }) => run((ctx) => check(ctx, flags)));

  program
    .command('forget')
    .summary('remove recovery points, by id or by a keep policy')
    .description(
      "Removes the named recovery points, or those a keep policy does not keep. Data is freed by 'prune'\n" +
        '(or --prune). Points are grouped by host and paths; each group keeps its own newest points.',
    )
    .argument('[points...]', 'point ids to remove')
    .option('--keep-last <n>', 'keep the n newest points')
    .option('--keep-hourly <n>', 'keep the newest point of each of the last n hours that have one')
    .option('--keep-daily <n>', 'keep the newest point of each of the last n days')
    .option('--keep-weekly <n>', 'keep the newest point of each of the last n ISO weeks')
    .option('--keep-monthly <n>', 'keep the newest point of each of the last n months')
    .option('--keep-yearly <n>', 'keep the newest point of each of the last n years')
    .option(
      '--keep-tag <tag>',
      'keep points with this tag (repeatable)',
      (v: string, p: string[]) => [...p, v],
      [],
    )
    .option('--host <name>', 'only consider points of this host')
    .option('--time-zone <iana>', 'time zone of the day/week/month buckets', 'UTC')
    .option('--dry-run', 'show what would be removed, remove nothing')
    .option('--prune', "run 'prune' afterwards")
    .option('--lock-wait <seconds>', 'with --prune: how long to wait for running backups', '3600')
    .action((ids: string[], flags: ForgetFlags) => run((ctx) => forget(ctx, ids, flags)));

  program
    .command('prune')
    .summary('free the space of data no recovery point uses')
    .description(
      "Deletes packs no point uses and repacks mostly-unused ones. Takes the vault's exclusive lock: it waits\n" +
        'for running backups to finish (up to --lock-wait), and backups that start meanwhile wait for it.',
    )
    .option('--dry-run', 'report what would be freed, change nothing')
    .option('--lock-wait <seconds>', 'how long to wait for running backups', '3600')
    .action((flags: { dryRun?: boolean; lockWait: string }) =>
      run((ctx) => runPrune(ctx, flags.dryRun === true, flags.lockWait)),
    );

  program
    .command('copy')
    .summary('copy recovery points to another vault, re-encrypted for its key')
    .argument('<points...>', "'latest' or point ids")
    .requiredOption(
      '--to <location>',
      'target vault; its passphrase from HOLDFAST_TO_PASSWORD or HOLDFAST_TO_PASSWORD_FILE',
    )
    .option('--to-key-file <file>', 'open the target vault with a key file')
    .action((refs: string[], flags: { to: string; toKeyFile?: string }) =>
      run((ctx) => copy(ctx, refs, flags)),
    );
}

function parseFraction(value: string | boolean | undefined): number {
  if (value === undefined || value === false) return 0;
  if (value === true) return 1;
  const match = /^(\d+(?:\.\d+)?)%$/.exec(value);
  const percent = match ? Number(match[1]) : NaN;
  if (!(percent > 0 && percent <= 100))
    throw new HoldfastError(
      'USAGE_INVALID',
      `--read-data takes a percentage like 10%, not '${value}'.`,
    );
  return percent / 100;
}

async function check(ctx: CommandContext, flags: { readData?: string | boolean }): Promise<number> {
  const fraction = parseFraction(flags.readData);
  const vault = await ctx.openVault({ loadIndex: false });
  let sample = { phase: 'check', done: 0, total: 0 };
  const reporter = new ProgressReporter(ctx.progress, () => ({
    phase: sample.phase,
    items: sample.done,
    totalItems: sample.total,
    bytes: 0,
    errors: 0,
  })).start();
  let report;
  try {
    report = await checkVault(vault, {
      readDataFraction: fraction,
      signal: ctx.signal,
      onProgress: (p) => (sample = p),
    });
  } finally {
    reporter.stop();
  }
  if (ctx.options.json) ctx.json(report);
  else {
    for (const problem of report.problems) ctx.say(`${problem.severity}: ${problem.message}`);
    for (const a of report.affected) {
      ctx.say(`point ${a.point.slice(0, 12)} (${a.time}) has ${a.paths.length} damaged files:`);
      for (const path of a.paths.slice(0, 50)) ctx.say(`  ${path}`);
      if (a.paths.length > 50) ctx.say(`  … and ${a.paths.length - 50} more (use --json for all)`);
    }
    ctx.say(report.ok ? 'no errors were found' : 'the vault is damaged: see the errors above');
  }
  return report.ok ? EXIT.ok : EXIT.damage;
}

function count(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new HoldfastError('USAGE_INVALID', `--${name} takes a whole number, not '${value}'.`);
  return n;
}

async function forget(ctx: CommandContext, ids: string[], flags: ForgetFlags): Promise<number> {
  const rules: ForgetPolicy = {
    ...opt('keepLast', count('keep-last', flags.keepLast)),
    ...opt('keepHourly', count('keep-hourly', flags.keepHourly)),
    ...opt('keepDaily', count('keep-daily', flags.keepDaily)),
    ...opt('keepWeekly', count('keep-weekly', flags.keepWeekly)),
    ...opt('keepMonthly', count('keep-monthly', flags.keepMonthly)),
    ...opt('keepYearly', count('keep-yearly', flags.keepYearly)),
    ...(flags.keepTag.length ? { keepTags: flags.keepTag } : {}),
  };
  const hasPolicy = Object.keys(rules).length > 0;
  if (ids.length > 0 && hasPolicy)
    throw new HoldfastError('USAGE_INVALID', 'Give either point ids or --keep-* rules, not both.');
  if (ids.length === 0 && !hasPolicy)
    throw new HoldfastError('USAGE_INVALID', 'Name points to forget, or give --keep-* rules.');
  const vault = await ctx.openVault();
  const all = (await listPoints(vault)).filter(
    (p) => flags.host === undefined || p.host === flags.host,
  );
  let remove: Point[];
  let keep: Array<{ point: Point; reasons: string[] }> = [];
  if (hasPolicy) ({ remove, keep } = selectForget(all, rules, { timeZone: flags.timeZone }));
  else remove = [...new Map(ids.map((id) => resolvePoint(all, id)).map((p) => [p.id, p])).values()];
  if (!flags.dryRun) {
    const { locked } = await forgetPointIds(
      vault,
      remove.map((p) => p.id),
      ctx.signal,
    );
    // Points under a storage retention lock stay (docs/immutability.md): said, not hidden.
    const stays = new Set(locked.map((l) => l.id));
    for (const { id, until } of locked)
      ctx.warn(
        `kept ${id.slice(0, 12)}: its object is under a retention lock until ${new Date(until).toISOString()}`,
      );
    remove = remove.filter((p) => !stays.has(p.id));
  }
  if (ctx.options.json) {
    ctx.json({
      dryRun: flags.dryRun === true,
      removed: remove.map((p) => ({ id: p.id, time: p.time })),
      kept: keep.map((k) => ({ id: k.point.id, time: k.point.time, reasons: k.reasons })),
    });
  } else {
    for (const k of keep)
      ctx.say(`keep   ${k.point.id.slice(0, 12)}  ${k.point.time}  ${k.reasons.join(', ')}`);
    for (const p of remove)
      ctx.say(`${flags.dryRun ? 'would remove' : 'removed'} ${p.id.slice(0, 12)}  ${p.time}`);
  }
  if (flags.prune && !flags.dryRun) return runPrune(ctx, false, flags.lockWait);
  return EXIT.ok;
}

function opt<K extends string>(key: K, value: number | undefined): { [P in K]?: number } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: number };
}

async function runPrune(ctx: CommandContext, dryRun: boolean, lockWait: string): Promise<number> {
  const waitSeconds = Number(lockWait);
  if (!(waitSeconds >= 0))
    throw new HoldfastError('USAGE_INVALID', `--lock-wait takes seconds, not '${lockWait}'.`);
  const vault = await ctx.openVault();
  const sealer = createBlobSealer(vault.keys.encryption, { level: vault.config.compressionLevel });
  try {
    const report = await prune(vault, {
      signal: ctx.signal,
      lockWaitMs: waitSeconds * 1000,
      dryRun,
      sealer,
    });
    if (ctx.options.json) ctx.json(report);
    else
      ctx.say(
        `${dryRun ? 'would free' : 'freed'} ${formatBytes(report.bytesFreed)}: ${report.packsDeleted} packs deleted, ${report.packsRepacked} repacked, ${report.packsKept} kept`,
      );
    return EXIT.ok;
  } finally {
    await sealer.close();
  }
}

async function copy(
  ctx: CommandContext,
  refs: string[],
  flags: { to: string; toKeyFile?: string },
): Promise<number> {
  const source = await ctx.openVaultForReading();
  const all = await ctx.readablePoints(source);
  const points = [...new Map(refs.map((r) => resolvePoint(all, r)).map((p) => [p.id, p])).values()];
  const targetCredential = await readCredential({
    passwordVar: 'HOLDFAST_TO_PASSWORD',
    fileVar: 'HOLDFAST_TO_PASSWORD_FILE',
    keyFile: flags.toKeyFile,
    label: 'target vault',
  });
  const target = await openVault(flags.to, targetCredential);
  const sealer = createBlobSealer(target.keys.encryption, {
    level: target.config.compressionLevel,
  });
  try {
    const results = await copyPoints(source, target, points, { signal: ctx.signal, sealer });
    if (ctx.options.json) ctx.json(results);
    else
      for (const r of results)
        ctx.say(
          `${r.source.slice(0, 12)} → ${r.skipped ? 'already in target' : `copied as ${r.target.slice(0, 12)}`}`,
        );
    return EXIT.ok;
  } finally {
    await sealer.close();
  }
}
