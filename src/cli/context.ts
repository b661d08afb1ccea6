import { listPoints, loadIndexForReading, openVault } from '../app/direct.js';
import { describeError, HoldfastError, isHoldfastError, type ErrorCode } from '../core/index.js';
import type { Point, Vault } from '../engine/index.js';
import { ApiClient } from './api-client.js';
import { ApiError, ApiTransport } from './api-transport.js';
import { mainSources, readCredential } from './credentials.js';
import { progressMode, type ProgressMode } from './progress.js';
import { serverAccess } from './server-access.js';

/** Exit codes of the holdfast command; documented in docs/cli.md. */
export const EXIT = {
  ok: 0,
  error: 1,
  usage: 2,
  warnings: 3,
  damage: 4,
  interrupted: 130,
} as const;

/** Codes that mean the request itself was wrong: exit code {@link EXIT.usage}. */
const USAGE_CODES: ReadonlySet<ErrorCode> = new Set([
  'USAGE_INVALID',
  'PASSWORD_MISSING',
  'REQUEST_INVALID',
  'POLICY_INVALID',
]);

/** Options every command accepts. */
export interface GlobalOptions {
  vault?: string;
  keyFile?: string;
  server?: string;
  tokenFile?: string;
  dataDir?: string;
  json?: boolean;
  jsonProgress?: boolean;
  quiet?: boolean;
  debug?: boolean;
}

/** How a command is run: in a context, its result the exit code. */
export type Runner = (fn: (ctx: CommandContext) => Promise<number>) => Promise<void>;

/** What a command runs with: options, cancellation and output helpers. */
export class CommandContext {
  readonly controller = new AbortController();

  private client: ApiClient | undefined;

  /** Set once a warning was printed; {@link exitCode} turns success into exit code 3. */
  private warned = false;

  constructor(readonly options: GlobalOptions) {}

  /** Cancellation for the whole command (Ctrl-C aborts it). */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /**
   * Where the vault location for direct access comes from (`--vault` or HOLDFAST_VAULT), or
   * undefined when none is given and commands that exist in both modes address the server.
   */
  get vaultLocationSource(): '--vault' | 'HOLDFAST_VAULT' | undefined {
    if (this.options.vault !== undefined) return '--vault';
    if (process.env['HOLDFAST_VAULT']) return 'HOLDFAST_VAULT';
    return undefined;
  }

  /** The vault location from --vault or HOLDFAST_VAULT. */
  get vaultLocation(): string {
    const location = this.options.vault ?? process.env['HOLDFAST_VAULT'];
    if (!location) {
      throw new HoldfastError(
        'USAGE_INVALID',
        'No vault given: pass --vault <dir> or set HOLDFAST_VAULT to work on a vault directly. ' +
          "Through the server, use its commands instead: 'holdfast item list', 'backup-now <item>', " +
          "'points <item>', 'restore <item> --point <id|latest> --target <dir>'.",
      );
    }
    return location;
  }

  /**
   * The client of the Holdfast server (`--server`, token from HOLDFAST_TOKEN or a file). A
   * `--vault <location>` on the command line is refused here, since a server command would
   * otherwise ignore it silently; only `protect` reads `--vault`, as a vault name.
   */
  async api(options: { vaultIsName?: boolean } = {}): Promise<ApiClient> {
    if (this.options.vault !== undefined && options.vaultIsName !== true) {
      throw new HoldfastError(
        'USAGE_INVALID',
        '--vault <location> opens a vault directly, for the direct commands (backup, points, restore, ls, ' +
          'check…); this command works through the server, which knows vaults by name. To give the ' +
          "vault at a location a name: 'holdfast vault create <name> --location <dir>'.",
      );
    }
    this.client ??= new ApiClient(new ApiTransport(await serverAccess(this.options), this.signal));
    return this.client;
  }

  /** How progress should be shown. */
  get progress(): ProgressMode {
    return progressMode(this.options.jsonProgress === true, this.options.quiet === true);
  }

  /** Opens the vault with the credential from the environment, key file or prompt. */
  async openVault(options: { loadIndex?: boolean } = {}): Promise<Vault> {
    return openVault(
      this.vaultLocation,
      await readCredential(mainSources(this.options.keyFile)),
      options,
    );
  }

  /**
   * Opens the vault for a command that only reads (restore, ls, diff, copy source): damage to
   * the index is warned about, and what is intact stays readable (see loadIndexForReading).
   */
  async openVaultForReading(): Promise<Vault> {
    const vault = await this.openVault({ loadIndex: false });
    await loadIndexForReading(vault, (message) => this.warn(message), this.signal);
    return vault;
  }

  /** Every readable point, oldest first; damaged ones are reported and left out. */
  async readablePoints(vault: Vault): Promise<Point[]> {
    return listPoints(vault, (id, error) =>
      this.warn(
        `point ${id.slice(0, 12)} is damaged and was left out: ${describeError(error)} Run 'holdfast check'.`,
      ),
    );
  }

  /** `code`, or {@link EXIT.warnings} when it is success but warnings were printed. */
  exitCode(code: number): number {
    return code === EXIT.ok && this.warned ? EXIT.warnings : code;
  }

  /** Prints a line for people (suppressed by --json and --quiet). */
  say(line: string): void {
    if (!this.options.json && !this.options.quiet) process.stdout.write(line + '\n');
  }

  /** Prints a note on stderr that is not a warning (e.g. waiting for a lock); --quiet hides it. */
  info(line: string): void {
    if (!this.options.quiet) process.stderr.write(`${line}\n`);
  }

  /** Prints a warning on stderr; the command then ends with exit code 3 at best. */
  warn(line: string): void {
    this.warned = true;
    process.stderr.write(`warning: ${line}\n`);
  }

  /** Prints a value as JSON on stdout. */
  json(value: unknown): void {
    process.stdout.write(JSON.stringify(value, null, 2) + '\n');
  }
}

/** Maps an error to its exit code and prints it (with the cause chain under --debug). */
export function reportError(error: unknown, debug: boolean): number {
  const code: ErrorCode | undefined = isHoldfastError(error) ? error.code : undefined;
  const shownCode = error instanceof ApiError ? error.serverCode : code;
  // The code ends the first line, so a message that goes on to list examples stays readable.
  const [first, ...rest] = describeError(error).split('\n');
  const tag = shownCode ? ` [${shownCode}]` : '';
  process.stderr.write(`error: ${[`${first ?? ''}${tag}`, ...rest].join('\n')}\n`);
  if (error instanceof ApiError) {
    for (const d of error.details)
      process.stderr.write(`  ${d.path || '(request)'}: ${d.message}\n`);
  }
  if (debug) {
    let cause: unknown = error;
    while (cause instanceof Error) {
      process.stderr.write(`  ${cause.stack ?? cause.message}\n`);
      cause = cause.cause;
    }
  } else if (!isHoldfastError(error)) {
    process.stderr.write('  (run with --debug for details)\n');
  }
  if (code === 'CANCELLED') return EXIT.interrupted;
  if (code !== undefined && USAGE_CODES.has(code)) return EXIT.usage;
  return EXIT.error;
}
