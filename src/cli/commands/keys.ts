import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { createVault } from '../../app/direct.js';
import { HoldfastError } from '../../core/index.js';
import { DEFAULT_VAULT_CONFIG, type Credential } from '../../engine/index.js';
import { EXIT, type CommandContext } from '../context.js';
import { mainSources, readCredential } from '../credentials.js';

type Runner = (fn: (ctx: CommandContext) => Promise<number>) => Promise<void>;

/** Registers `init` and `key add|list|remove`. */
export function registerKeys(program: Command, run: Runner): void {
  program
    .command('init')
    .summary('create a new vault')
    .description(
      'Creates an encrypted vault at --vault / HOLDFAST_VAULT. A random master key is made and wrapped by ' +
        'the passphrase (HOLDFAST_PASSWORD, HOLDFAST_PASSWORD_FILE or a prompt) or, with --new-key-file, by a ' +
        'new random key file. Keep the passphrase or key file safe: without one, the data cannot be read.',
    )
    .option(
      '--new-key-file <file>',
      'unlock the vault with a new random key file written here (mode 0600)',
    )
    .option(
      '--compression <level>',
      'zstd level 1-19 for this vault: 1-2 back up faster and store more, higher levels the opposite',
      String(DEFAULT_VAULT_CONFIG.compressionLevel),
    )
    .action((flags: InitFlags) => run((ctx) => init(ctx, flags)));

  const key = program
    .command('key')
    .summary('manage the passphrases and key files that open a vault');
  key
    .command('list')
    .summary('list key slots')
    .action(() => run(keyList));
  key
    .command('add')
    .summary(
      'add a passphrase (HOLDFAST_NEW_PASSWORD / HOLDFAST_NEW_PASSWORD_FILE / prompt) or key file',
    )
    .option('--new-key-file <file>', 'create a random key file here instead of a passphrase')
    .option('--label <text>', 'what this key is for', 'added')
    .action((flags: { newKeyFile?: string; label: string }) => run((ctx) => keyAdd(ctx, flags)));
  key
    .command('remove')
    .summary('remove a key slot (never the last one, nor the one in use)')
    .argument('<id>', 'key slot id or unique prefix')
    .action((id: string) => run((ctx) => keyRemove(ctx, id)));
}

async function newKeyFile(path: string): Promise<Credential> {
  const secret = randomBytes(32);
  try {
    await writeFile(path, secret.toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
  } catch (error) {
    throw new HoldfastError(
      'USAGE_INVALID',
      `Cannot create key file ${path}: ${(error as Error).message}. It must not exist yet.`,
      { cause: error },
    );
  }
  return { kind: 'keyfile', secret };
}

interface InitFlags {
  newKeyFile?: string;
  compression: string;
}

async function init(ctx: CommandContext, flags: InitFlags): Promise<number> {
  const level = Number(flags.compression);
  if (!Number.isInteger(level) || level < 1 || level > 19) {
    throw new HoldfastError(
      'USAGE_INVALID',
      `--compression takes a zstd level from 1 to 19, not '${flags.compression}'.`,
    );
  }
  const location = ctx.vaultLocation;
  const credential = flags.newKeyFile
    ? await newKeyFile(flags.newKeyFile)
    : await readCredential(mainSources(), true);
  const vault = await createVault(location, credential, {
    config: { ...DEFAULT_VAULT_CONFIG, compressionLevel: level },
  });
  if (ctx.options.json) ctx.json({ id: vault.id, location: vault.backend.location });
  else ctx.say(`created vault ${vault.id.slice(0, 12)} at ${vault.backend.location}`);
  return EXIT.ok;
}

async function keyList(ctx: CommandContext): Promise<number> {
  const vault = await ctx.openVault({ loadIndex: false });
  const slots = await vault.keySlots();
  if (ctx.options.json) {
    ctx.json(
      slots.map(({ name, slot }) => ({
        id: name,
        kind: slot.kind,
        label: slot.label,
        host: slot.host,
        created: slot.created,
        current: name === vault.keySlotName,
      })),
    );
    return EXIT.ok;
  }
  for (const { name, slot } of slots) {
    ctx.say(
      `${name === vault.keySlotName ? '*' : ' '} ${name.slice(0, 12)}  ${slot.kind.padEnd(10)}  ${slot.created.slice(0, 19)}  ${slot.host}  ${slot.label}`,
    );
  }
  return EXIT.ok;
}

async function keyAdd(
  ctx: CommandContext,
  flags: { newKeyFile?: string; label: string },
): Promise<number> {
  const vault = await ctx.openVault({ loadIndex: false });
  const credential = flags.newKeyFile
    ? await newKeyFile(flags.newKeyFile)
    : await readCredential(
        {
          passwordVar: 'HOLDFAST_NEW_PASSWORD',
          fileVar: 'HOLDFAST_NEW_PASSWORD_FILE',
          label: 'new key',
        },
        true,
      );
  const name = await vault.addKey(credential, flags.label);
  if (ctx.options.json) ctx.json({ id: name });
  else ctx.say(`added key ${name.slice(0, 12)}`);
  return EXIT.ok;
}

async function keyRemove(ctx: CommandContext, id: string): Promise<number> {
  const vault = await ctx.openVault({ loadIndex: false });
  await vault.removeKey(id);
  ctx.say(`removed key ${id}`);
  return EXIT.ok;
}
