import { resolve } from 'node:path';
import type { Command } from 'commander';
import { normalizeLocation } from '../../app/direct.js';
import type { CreateVaultInput, VaultView } from '../../app/index.js';
import { HoldfastError } from '../../core/index.js';
import { registerVaultRedundancy } from './vault-redundancy.js';
import { EXIT, type CommandContext, type Runner } from '../context.js';
import { mainSources, readCredential } from '../credentials.js';
import { defined, vaultName, wholeNumber } from '../flags.js';
import { bytesCell, details, localTime, table } from '../format.js';
import { followJob } from '../job-waiter.js';

interface SoftDeleteFlags {
  softDelete?: string;
  softDeleteDays?: string;
}

interface CreateFlags extends SoftDeleteFlags {
  location?: string;
  compression?: string;
  redundancy?: string;
  secondary?: string;
}

const SOFT_DELETE_HELP = 'on | off | always-on (always-on can never be turned off again)';

/** Registers `vault create|list|show|update|delete`: vaults the server knows by name. */
export function registerVaults(program: Command, run: Runner): void {
  const vault = program
    .command('vault')
    .summary('manage the vaults of the server, by name')
    .description(
      'Vaults the server knows, each by a NAME. A vault also has a LOCATION (the directory its data is in); ' +
        'the name is what server commands take (protect --vault <name>), the location is what direct access ' +
        'takes (--vault <location> with backup, points, restore… when no server is available).',
    );

  registerVaultRedundancy(vault, run);
  vault
    .command('create')
    .summary('create a vault (or adopt an existing one at --location) and name it')
    .description(
      'Creates an encrypted vault named <name> at --location (default: <data-dir>/vaults/<name> on the server), ' +
        'or adopts an existing vault found there. The passphrase comes from HOLDFAST_PASSWORD, ' +
        'HOLDFAST_PASSWORD_FILE or a prompt, and is sent to the server, which keeps what it needs to unlock the ' +
        'vault; --key-file names a key file on the server host instead. Keep the passphrase or key file: with ' +
        "it and the location alone, 'holdfast --vault <location> restore' works without the server.",
    )
    .argument('<name>', 'name of the vault on the server')
    .option('--location <dir>', 'directory of the vault (relative paths are made absolute here)')
    .option('--soft-delete <state>', SOFT_DELETE_HELP)
    .option('--soft-delete-days <n>', 'days deleted backup data stays recoverable (14-180)')
    .option('--compression <level>', 'zstd level 1-19 (default 3)')
    .option('--key-file <file>', 'unlock with this key file on the server host, not a passphrase')
    .option('--redundancy <kind>', 'lrs (one location, default) or grs (also a secondary location)')
    .option('--secondary <location>', 'grs: where every object is also copied, asynchronously')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  holdfast vault create main --location /srv/backup/main\n' +
        '  holdfast vault create offsite --location /mnt/usb/vault --soft-delete always-on --soft-delete-days 30\n' +
        '  HOLDFAST_PASSWORD_FILE=/root/vault.pass holdfast vault create main',
    )
    .action((name: string, flags: CreateFlags) => run((ctx) => create(ctx, name, flags)));

  vault
    .command('list')
    .summary('list vaults with their usage')
    .action(() => run(list));

  vault
    .command('show')
    .summary('show one vault')
    .argument('<name>', 'vault name')
    .action((name: string) =>
      run(async (ctx) => printVault(ctx, await (await ctx.api()).getVault(name))),
    );

  vault
    .command('update')
    .summary("change a vault's soft-delete settings")
    .argument('<name>', 'vault name')
    .option('--soft-delete <state>', SOFT_DELETE_HELP)
    .option('--soft-delete-days <n>', 'days deleted backup data stays recoverable (14-180)')
    .addHelpText(
      'after',
      '\nExample:\n  holdfast vault update main --soft-delete on --soft-delete-days 30',
    )
    .action((name: string, flags: SoftDeleteFlags) => run((ctx) => update(ctx, name, flags)));

  vault
    .command('delete')
    .summary('remove a vault from the server; its data stays at its location')
    .description(
      'Removes the vault from the server. Its data stays at its location, readable with --vault <location>, ' +
        'and can be adopted again with vault create --location. Refused while the vault holds items, ' +
        'soft-deleted data or unfinished jobs (RESOURCE_IN_USE).',
    )
    .argument('<name>', 'vault name')
    .action((name: string) => run((ctx) => remove(ctx, name)));

  vault
    .command('verify')
    .summary('check a vault on the server: structure, and a share of its data')
    .description(
      'Queues a verify job: the structure check of every index, pack and point, and --read-data percent of ' +
        'the packs downloaded and authenticated (default 10). With --wait, follows it: exit 0 clean, ' +
        '3 with warnings, 1 failed.',
    )
    .argument('<name>', 'vault name')
    .option('--read-data <percent>', 'share of the packs to read, 0-100 (default 10)')
    .option('--wait', 'follow the job until it ends')
    .option('--from <copy>', "primary (default) or secondary: a GRS vault's copy at the other site")
    .addHelpText(
      'after',
      '\nExamples:\n  holdfast vault verify main --read-data 100 --wait\n  holdfast vault verify geo --from secondary --wait',
    )
    .action((name: string, flags: { readData?: string; wait?: boolean; from?: string }) =>
      run(async (ctx) => {
        const percent = flags.readData?.replace(/%$/, '');
        const readDataPercent = percent === undefined ? undefined : Number(percent);
        if (readDataPercent !== undefined && !(readDataPercent >= 0 && readDataPercent <= 100)) {
          throw new HoldfastError(
            'USAGE_INVALID',
            `--read-data takes a percentage from 0 to 100, not '${flags.readData ?? ''}'.`,
          );
        }
        if (flags.from !== undefined && flags.from !== 'primary' && flags.from !== 'secondary')
          throw new HoldfastError(
            'USAGE_INVALID',
            `--from takes primary or secondary, not '${flags.from}'.`,
          );
        const api = await ctx.api();
        const job = await api.verifyVault(name, {
          ...defined('readDataPercent', readDataPercent),
          ...defined('from', flags.from as 'primary' | 'secondary' | undefined),
        });
        return followJob(ctx, api, job, flags.wait === true);
      }),
    );
}

function softDeleteInput(flags: SoftDeleteFlags): CreateVaultInput['softDelete'] {
  let state: 'on' | 'off' | 'always_on' | undefined;
  if (flags.softDelete !== undefined) {
    const value = flags.softDelete.replace('_', '-');
    if (value !== 'on' && value !== 'off' && value !== 'always-on') {
      throw new HoldfastError(
        'USAGE_INVALID',
        `--soft-delete takes on, off or always-on, not '${flags.softDelete}'.`,
      );
    }
    state = value === 'always-on' ? 'always_on' : value;
  }
  const days = wholeNumber('soft-delete-days', flags.softDeleteDays, 1);
  if (state === undefined && days === undefined) return undefined;
  return { ...defined('state', state), ...defined('days', days) };
}

async function create(ctx: CommandContext, name: string, flags: CreateFlags): Promise<number> {
  vaultName(name, "'vault create'");
  const softDelete = softDeleteInput(flags);
  const compressionLevel = wholeNumber('compression', flags.compression, 1);
  // Relative paths mean this shell's directory: for the usual local server, the same host.
  const location = flags.location === undefined ? undefined : normalizeLocation(flags.location);
  const secondary = flags.secondary === undefined ? undefined : normalizeLocation(flags.secondary);
  // --key-file is also a global option, so commander hands it to the program.
  const api = await ctx.api();
  const keyFile = ctx.options.keyFile;
  const unlock = keyFile !== undefined ? { keyFile: resolve(keyFile) } : await passphrase();
  const view = await api.createVault({
    name,
    ...defined('location', location),
    ...unlock,
    ...defined('softDelete', softDelete),
    ...defined('compressionLevel', compressionLevel),
    ...defined('redundancy', redundancyOf(flags.redundancy, secondary)),
    ...defined('secondaryLocation', secondary),
  });
  if (ctx.options.json) {
    ctx.json(view);
    return EXIT.ok;
  }
  ctx.say(`vault ${view.name} created at ${view.location} (soft delete ${softDeleteText(view)})`);
  if (view.secondaryLocation !== null)
    ctx.say(`  geo-redundant: every object is also copied to ${view.secondaryLocation}`);
  ctx.say(
    `  protect paths into it: holdfast protect <path>... --vault ${view.name} --policy <policy> --name <item>`,
  );
  return EXIT.ok;
}

function redundancyOf(
  given: string | undefined,
  secondary: string | undefined,
): 'lrs' | 'grs' | undefined {
  if (given === undefined) return secondary !== undefined ? 'grs' : undefined;
  if (given === 'lrs' || given === 'grs') return given;
  throw new HoldfastError('USAGE_INVALID', `--redundancy takes lrs or grs, not '${given}'.`);
}

async function passphrase(): Promise<{ passphrase: string }> {
  const credential = await readCredential(mainSources(), true);
  if (credential.kind !== 'passphrase') {
    throw new HoldfastError('USAGE_INVALID', 'Give a passphrase or --key-file.');
  }
  return { passphrase: credential.passphrase };
}

function softDeleteText(v: VaultView): string {
  return `${v.softDelete.state.replace('_', '-')}, ${v.softDelete.days} days`;
}

async function list(ctx: CommandContext): Promise<number> {
  const answer = await (await ctx.api()).listVaults();
  if (ctx.options.json) {
    ctx.json(answer);
    return EXIT.ok;
  }
  if (answer.data.length === 0) {
    ctx.say("no vaults: create one with 'holdfast vault create <name> --location <dir>'");
    return EXIT.ok;
  }
  const rows = answer.data.map((v) => [
    v.name,
    v.location,
    softDeleteText(v),
    String(v.items),
    String(v.usage.points),
    bytesCell(v.usage.protectedBytes),
    bytesCell(v.usage.storedBytes),
    localTime(v.createdAt),
  ]);
  const headers = ['NAME', 'LOCATION', 'SOFT DELETE', 'ITEMS', 'POINTS', 'PROTECTED', 'STORED'];
  for (const line of table([...headers, 'CREATED'], rows)) ctx.say(line);
  return EXIT.ok;
}

function printVault(ctx: CommandContext, v: VaultView): number {
  if (ctx.options.json) {
    ctx.json(v);
    return EXIT.ok;
  }
  const lines = details([
    ['vault', v.name],
    ['id', v.id],
    ['location', v.location],
    ['redundancy', v.redundancy],
    ['soft delete', softDeleteText(v)],
    ['items', String(v.items)],
    ['points', String(v.usage.points)],
    ['protected', bytesCell(v.usage.protectedBytes)],
    ['stored', bytesCell(v.usage.storedBytes)],
    ['dedup ratio', `${v.usage.dedupRatio.toFixed(2)}x`],
    ['usage as of', localTime(v.usage.refreshedAt)],
    ['created', localTime(v.createdAt)],
  ]);
  for (const line of lines) ctx.say(line);
  return EXIT.ok;
}

async function update(ctx: CommandContext, name: string, flags: SoftDeleteFlags): Promise<number> {
  const softDelete = softDeleteInput(flags);
  if (softDelete === undefined) {
    throw new HoldfastError(
      'USAGE_INVALID',
      'Nothing to change: give --soft-delete <state> and/or --soft-delete-days <n>.',
    );
  }
  const view = await (await ctx.api()).updateVault(name, { softDelete });
  if (ctx.options.json) ctx.json(view);
  else ctx.say(`vault ${view.name} updated: soft delete ${softDeleteText(view)}`);
  return EXIT.ok;
}

async function remove(ctx: CommandContext, name: string): Promise<number> {
  await (await ctx.api()).deleteVault(name);
  if (ctx.options.json) ctx.json({ name, deleted: true });
  else ctx.say(`vault ${name} deleted`);
  return EXIT.ok;
}
