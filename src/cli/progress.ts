import { formatBytes, formatDuration } from '../core/index.js';

/** A snapshot of long work's counters, shown on a terminal or as JSON lines. */
export interface ProgressSample {
  readonly phase: string;
  readonly items: number;
  readonly totalItems?: number | undefined;
  readonly bytes: number;
  readonly totalBytes?: number | undefined;
  readonly errors: number;
  readonly current?: string | undefined;
  /** Time the work has run, when the worker knows better than this process (a server job). */
  readonly elapsedSeconds?: number | undefined;
  /** Rate and ETA as the worker measured them; otherwise computed here from the counters. */
  readonly bytesPerSecond?: number | undefined;
  readonly etaSeconds?: number | undefined;
}

/** How progress is shown: a redrawn terminal line, JSON lines on stderr, or nothing. */
export type ProgressMode = 'tty' | 'json' | 'none';

/** Chooses the mode: JSON when asked, a line on a terminal, else silence. */
export function progressMode(jsonProgress: boolean, quiet: boolean): ProgressMode {
  if (jsonProgress) return 'json';
  if (quiet || !process.stderr.isTTY) return 'none';
  return 'tty';
}

/** Samples counters every interval and renders them with rate and ETA. */
export class ProgressReporter {
  private timer: NodeJS.Timeout | undefined;
  private readonly started = Date.now();

  constructor(
    private readonly mode: ProgressMode,
    private readonly sample: () => ProgressSample,
    private readonly intervalMs = 250,
  ) {}

  /** Starts reporting (no-op in `none` mode). */
  start(): this {
    if (this.mode === 'none') return this;
    this.timer = setInterval(() => this.render(), this.mode === 'json' ? 1000 : this.intervalMs);
    this.timer.unref();
    return this;
  }

  /** Stops reporting and clears the terminal line. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.mode === 'tty') process.stderr.write('\r\x1b[2K');
  }

  private render(): void {
    const s = this.sample();
    const elapsed = s.elapsedSeconds ?? (Date.now() - this.started) / 1000;
    const rate = s.bytesPerSecond ?? (elapsed > 0 ? s.bytes / elapsed : 0);
    const eta =
      s.etaSeconds ??
      (s.totalBytes !== undefined && rate > 0
        ? Math.max(0, (s.totalBytes - s.bytes) / rate)
        : undefined);
    if (this.mode === 'json') {
      process.stderr.write(
        JSON.stringify({
          type: 'progress',
          ...s,
          elapsedSeconds: elapsed,
          bytesPerSecond: Math.round(rate),
          etaSeconds: eta,
        }) + '\n',
      );
      return;
    }
    const items = s.totalItems !== undefined ? `${s.items}/${s.totalItems}` : `${s.items}`;
    const bytes =
      s.totalBytes !== undefined
        ? `${formatBytes(s.bytes)}/${formatBytes(s.totalBytes)}`
        : formatBytes(s.bytes);
    const etaText = eta !== undefined ? ` ETA ${formatDuration(eta)}` : '';
    const errors = s.errors > 0 ? ` ${s.errors} errors` : '';
    let line = `[${formatDuration(elapsed)}] ${s.phase}: ${items} items, ${bytes}, ${formatBytes(rate)}/s${etaText}${errors}`;
    const width = process.stderr.columns ?? 100;
    if (s.current && line.length + 3 < width) {
      const room = width - line.length - 3;
      const current = s.current.length > room ? '…' + s.current.slice(-(room - 1)) : s.current;
      line += `  ${current}`;
    }
    process.stderr.write(`\r\x1b[2K${line.slice(0, width - 1)}`);
  }
}
