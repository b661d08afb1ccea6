import type { Command } from 'commander';
import { EXIT, type CommandContext, type Runner } from '../context.js';
import { localTime, table } from '../format.js';

/** Registers `token create|list|revoke`: API tokens of the server. */
export function registerTokens(program: Command, run: Runner): void {
  const token = program
    .command('token')
    .summary('manage API tokens (for scripts, other hosts, the web console)')
    .description(
      'Bearer tokens for the REST API. The CLI takes its token from HOLDFAST_TOKEN, else --token-file, else ' +
        '<data-dir>/admin.token (written by the server on its first start).',
    );

  token
    .command('create')
    .summary('create a token; its secret is shown only once')
    .argument('<name>', 'what the token is for, e.g. ci or web02')
    .option(
      '--agent-for <vault>',
      'an append-only agent token: it may read and add to this vault through the server, never delete or overwrite, and use no other endpoint',
    )
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  holdfast token create ci\n' +
        '  holdfast --json token create web02 | jq -r .token > web02.token   # then: --token-file web02.token\n' +
        '  holdfast token create web02-agent --agent-for main\n' +
        '    # on web02: HOLDFAST_TOKEN=<secret> holdfast backup /srv --vault http://<server>:8440/vaults/main',
    )
    .action((name: string, flags: { agentFor?: string }) =>
      run((ctx) => create(ctx, name, flags.agentFor)),
    );

  token
    .command('list')
    .summary('list tokens (never their secrets)')
    .action(() => run(list));

  token
    .command('revoke')
    .summary('revoke a token: requests with it are refused from now on')
    .argument('<id>', 'token id (from token list)')
    .action((id: string) =>
      run(async (ctx) => {
        await (await ctx.api()).revokeToken(id);
        if (ctx.options.json) ctx.json({ id, revoked: true });
        else ctx.say(`token ${id} revoked`);
        return EXIT.ok;
      }),
    );
}

/** Registers `audit`: the server's audit trail. */
export function registerAudit(program: Command, run: Runner): void {
  program
    .command('audit')
    .summary('show the audit trail: changes made through the API, newest first')
    .option('--limit <n>', 'how many events', '50')
    .action((flags: { limit: string }) =>
      run(async (ctx) => {
        const answer = await (await ctx.api()).listAuditEvents(Number(flags.limit) || 50);
        if (ctx.options.json) ctx.json(answer);
        else {
          const rows = answer.data.map((e) => [
            localTime(e.time),
            e.actor,
            e.action,
            e.target,
            JSON.stringify(e.details),
          ]);
          for (const line of table(['TIME', 'WHO', 'ACTION', 'TARGET', 'FIELDS'], rows))
            ctx.say(line);
        }
        return EXIT.ok;
      }),
    );
}

async function create(ctx: CommandContext, name: string, agentFor?: string): Promise<number> {
  const view = await (await ctx.api()).createToken(name, agentFor);
  if (ctx.options.json) {
    ctx.json(view);
    return EXIT.ok;
  }
  // The new secret is this command's output, so it is printed even with --quiet.
  process.stdout.write(
    `${view.scope === 'agent' ? `agent token (append-only, vault ${view.vault ?? '?'})` : 'token'} ${view.id} created for ${view.name}; its secret is shown only now:\n${view.token ?? ''}\n`,
  );
  return EXIT.ok;
}

async function list(ctx: CommandContext): Promise<number> {
  const answer = await (await ctx.api()).listTokens();
  if (ctx.options.json) {
    ctx.json(answer);
    return EXIT.ok;
  }
  if (answer.data.length === 0) {
    ctx.say('no tokens');
    return EXIT.ok;
  }
  const rows = answer.data.map((t) => [
    t.id,
    t.name,
    t.scope === 'agent' ? `agent (${t.vault ?? '?'})` : 'admin',
    localTime(t.createdAt),
    localTime(t.lastUsedAt),
    localTime(t.revokedAt),
  ]);
  for (const line of table(['ID', 'NAME', 'ACCESS', 'CREATED', 'LAST USED', 'REVOKED'], rows))
    ctx.say(line);
  return EXIT.ok;
}
