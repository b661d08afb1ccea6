import type { Command } from 'commander';
import type { VaultView } from '../../app/index.js';
import { formatBytes, HoldfastError } from '../../core/index.js';
import { EXIT, type CommandContext, type Runner } from '../context.js';
import { localTime } from '../format.js';

/** Registers `vault replication|failover|reprotect|immutability`: protections of a vault. */
export function registerVaultRedundancy(vault: Command, run: Runner): void {
  vault
    .command('immutability')
    .summary('make a vault immutable: nothing deleted before its expiry, retention only lengthened')
    .description(
      'enabled: no recovery point can be deleted before its expiry, retention can only be lengthened, and ' +
        'stopping protection with its data deleted is refused (attempts are audited); it can be disabled again. ' +
        'locked: the same, for good: nobody can undo it.',
    )
    .argument('<name>', 'vault name')
    .requiredOption('--set <state>', 'disabled | enabled | locked')
    .addHelpText(
      'after',
      '\nExamples:\n  holdfast vault immutability main --set enabled\n  holdfast vault immutability main --set locked   # irreversible',
    )
    .action((name: string, flags: { set: string }) =>
      run(async (ctx) => {
        if (flags.set !== 'disabled' && flags.set !== 'enabled' && flags.set !== 'locked')
          throw new HoldfastError(
            'USAGE_INVALID',
            `--set takes disabled, enabled or locked, not '${flags.set}'.`,
          );
        const view = await (await ctx.api()).setImmutability(name, flags.set);
        if (ctx.options.json) ctx.json(view);
        else ctx.say(`vault ${view.name}: immutability ${view.immutability}`);
        return EXIT.ok;
      }),
    );
  vault
    .command('replication')
    .summary("show how far a GRS vault's secondary is behind (measured now)")
    .argument('<name>', 'vault name')
    .action((name: string) => run((ctx) => show(ctx, name, 'replication')));
  vault
    .command('failover')
    .summary('make the secondary of a GRS vault its primary (when the primary site is lost)')
    .description(
      'The secondary becomes the primary: backups and restores use it from now on. The old primary ' +
        "becomes the secondary, with replication paused until 'vault reprotect': objects that never reached " +
        'the secondary are lost with the old site (the replication lag says how much).',
    )
    .argument('<name>', 'vault name')
    .action((name: string) => run((ctx) => show(ctx, name, 'failover')));
  vault
    .command('reprotect')
    .summary('after a failover, copy the vault back to the old primary and keep it in sync')
    .argument('<name>', 'vault name')
    .action((name: string) => run((ctx) => show(ctx, name, 'reprotect')));
}

async function show(
  ctx: CommandContext,
  name: string,
  verb: 'replication' | 'failover' | 'reprotect',
): Promise<number> {
  const view = await (await ctx.api()).vaultRedundancy(name, verb);
  if (ctx.options.json) {
    ctx.json(view);
    return EXIT.ok;
  }
  for (const line of describe(view)) ctx.say(line);
  return EXIT.ok;
}

function describe(view: VaultView): string[] {
  const r = view.replication;
  if (r === null) return [`vault ${view.name} is locally redundant (lrs): no secondary`];
  return [
    `vault ${view.name}: primary ${view.location}, secondary ${view.secondaryLocation ?? '-'}`,
    r.paused
      ? `  failed over from ${r.failedOverFrom ?? '?'}: replication paused until 'holdfast vault reprotect ${view.name}'`
      : `  lag ${Math.round(r.lagSeconds)} s, ${r.objectsBehind} objects (${formatBytes(r.bytesBehind)}) behind`,
    `  last caught up ${localTime(r.lastReplicatedAt)}`,
    ...(r.measureError === null
      ? []
      : [`  could not measure now (figures above are the last measured): ${r.measureError}`]),
  ];
}
