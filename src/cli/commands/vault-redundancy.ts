import type { Command } from 'commander';
import type { VaultView } from '../../app/index.js';
import { formatBytes } from '../../core/index.js';
import { EXIT, type CommandContext, type Runner } from '../context.js';
import { localTime } from '../format.js';

/** Registers `vault replication|failover|reprotect`: geo-redundant vaults. */
export function registerVaultRedundancy(vault: Command, run: Runner): void {
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
  ];
}
