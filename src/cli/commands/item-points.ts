import { resolve } from 'node:path';
import type { PointView } from '../../app/index.js';
import { HoldfastError } from '../../core/index.js';
import { EXIT, type CommandContext } from '../context.js';
import { bytesCell, localTime, table } from '../format.js';
import { followJob } from '../job-waiter.js';

// `points` and `restore` exist in both modes: on a vault location they are the engine's direct
// commands (browse.ts, restore.ts); without one they address a protected item on the server,
// by name. These are the server halves, and the messages that keep the two forms apart.

/** Options of `restore` that only the server form takes. */
export interface ServerRestoreFlags {
  target?: string;
  include: string[];
  exclude: string[];
  overwrite?: string;
  verify?: boolean;
  point?: string;
  tier?: string;
  wait?: boolean;
  from?: string;
  as?: string;
  format?: string;
  newName?: string;
  force?: boolean;
}

const POINTS_FORMS =
  '  holdfast points <item>                  the points of a protected item, from the server\n' +
  '  holdfast --vault <location> points      the points in a vault, read directly (no server)';

const RESTORE_FORMS =
  '  holdfast restore <item> --point <id|latest> --target <dir>              through the server\n' +
  '  holdfast restore <machine> --point <id|latest> --as disks|new-machine|replace ...   a machine\n' +
  '  holdfast --vault <location> restore <point> --target <dir>              directly from a vault';

/** Both forms of `points`, for help texts. */
export const POINTS_HELP = `\nTwo forms:\n${POINTS_FORMS}`;
/** Both forms of `restore`, for help texts. */
export const RESTORE_HELP = `\nTwo forms:\n${RESTORE_FORMS}`;

/** The location option in use, for messages: `--vault <dir>` or `HOLDFAST_VAULT=<dir>`. */
function locationGiven(ctx: CommandContext, source: '--vault' | 'HOLDFAST_VAULT'): string {
  return source === '--vault'
    ? `--vault ${ctx.vaultLocation}`
    : `HOLDFAST_VAULT=${ctx.vaultLocation}`;
}

/** `points [item]` without a vault location: the item's points from the server. */
export async function serverPoints(
  ctx: CommandContext,
  item: string | undefined,
  flags: { host?: string; tag?: string; from?: string },
): Promise<number> {
  const source = ctx.vaultLocationSource;
  if (source !== undefined) {
    throw new HoldfastError(
      'USAGE_INVALID',
      `'points ${item ?? ''}' names a protected item, which only the server knows, but ${locationGiven(ctx, source)} ` +
        `selects direct access to a vault. The two forms:\n${POINTS_FORMS}`,
    );
  }
  if (item === undefined) {
    throw new HoldfastError(
      'USAGE_INVALID',
      `Which points? Name a protected item (see 'holdfast item list'), or give a vault location for direct access:\n${POINTS_FORMS}`,
    );
  }
  if (flags.host !== undefined || flags.tag !== undefined) {
    throw new HoldfastError(
      'USAGE_INVALID',
      '--host and --tag filter the points of a vault read directly (with --vault <location>); an item’s points need no filter.',
    );
  }
  const answer = await (
    await ctx.api()
  ).listPoints(item, flags.from === undefined ? undefined : fromOf(flags.from));
  if (ctx.options.json) {
    ctx.json(answer);
    return EXIT.ok;
  }
  printPoints(ctx, item, answer.data);
  return EXIT.ok;
}

function printPoints(ctx: CommandContext, item: string, points: readonly PointView[]): void {
  if (points.length === 0) {
    ctx.say(`no recovery points of ${item} yet: 'holdfast backup-now ${item}' makes one`);
    return;
  }
  const rows = points.map((p) => [
    p.id,
    localTime(p.time),
    p.tiers.join('+'),
    p.consistency,
    String(p.files),
    bytesCell(p.bytes),
    bytesCell(p.storedBytes),
    localTime(p.expiresAt),
  ]);
  const headers = ['ID', 'TIME', 'TIERS', 'CONSISTENCY', 'FILES', 'SIZE', 'STORED', 'EXPIRES'];
  for (const line of table(headers, rows)) ctx.say(line);
  ctx.say(`${points.length} recovery points`);
}

/** `restore <item> --point <id|latest> --target <dir>` without a vault location. */
export async function serverRestore(
  ctx: CommandContext,
  item: string,
  flags: ServerRestoreFlags,
): Promise<number> {
  if (flags.point === undefined) {
    throw new HoldfastError(
      'USAGE_INVALID',
      `Without a vault location, restore works through the server and needs --point. The two forms:\n${RESTORE_FORMS}`,
    );
  }
  const tier = flags.tier;
  if (tier !== undefined && tier !== 'auto' && tier !== 'snapshot' && tier !== 'vault') {
    throw new HoldfastError(
      'USAGE_INVALID',
      `--tier takes auto, snapshot or vault, not '${tier}'.`,
    );
  }
  const api = await ctx.api();
  const job = await api.restore(item, {
    point: flags.point,
    ...(flags.target !== undefined ? { target: resolve(flags.target) } : {}),
    ...machineRestoreFlags(flags),
    ...(flags.include.length > 0 ? { include: flags.include } : {}),
    ...(flags.exclude.length > 0 ? { exclude: flags.exclude } : {}),
    ...(flags.overwrite !== undefined
      ? { overwrite: flags.overwrite as 'never' | 'if-changed' | 'always' }
      : {}),
    ...(flags.verify ? { verify: true } : {}),
    ...(tier !== undefined ? { tier } : {}),
    ...(flags.from !== undefined ? { from: fromOf(flags.from) } : {}),
  });
  return followJob(ctx, api, job, flags.wait === true);
}

/** The machine options of a server restore, checked. */
function machineRestoreFlags(flags: ServerRestoreFlags): {
  as?: 'disks' | 'replace' | 'new-machine';
  format?: 'raw' | 'qcow2';
  newName?: string;
  force?: boolean;
} {
  const as = flags.as;
  if (as !== undefined && as !== 'disks' && as !== 'replace' && as !== 'new-machine')
    throw new HoldfastError(
      'USAGE_INVALID',
      `--as takes disks, replace or new-machine, not '${as}'.`,
    );
  const format = flags.format;
  if (format !== undefined && format !== 'raw' && format !== 'qcow2')
    throw new HoldfastError('USAGE_INVALID', `--format takes raw or qcow2, not '${format}'.`);
  return {
    ...(as !== undefined ? { as } : {}),
    ...(format !== undefined ? { format } : {}),
    ...(flags.newName !== undefined ? { newName: flags.newName } : {}),
    ...(flags.force ? { force: true } : {}),
  };
}

function fromOf(value: string): 'primary' | 'secondary' {
  if (value === 'primary' || value === 'secondary') return value;
  throw new HoldfastError('USAGE_INVALID', `--from takes primary or secondary, not '${value}'.`);
}

/** Refuses the server-only options of `restore` when a vault location selects direct access. */
export function refuseServerRestoreFlags(ctx: CommandContext, flags: ServerRestoreFlags): void {
  const given = (
    ['point', 'tier', 'wait', 'from', 'as', 'format', 'newName', 'force'] as const
  ).filter((k) => flags[k] !== undefined);
  const source = ctx.vaultLocationSource;
  if (given.length === 0 || source === undefined) return;
  throw new HoldfastError(
    'USAGE_INVALID',
    `${given.map((k) => `--${k === 'newName' ? 'new-name' : k}`).join(', ')}: only for restores through the server, but ${locationGiven(ctx, source)} ` +
      `selects direct access to a vault. The two forms:\n${RESTORE_FORMS}`,
  );
}
