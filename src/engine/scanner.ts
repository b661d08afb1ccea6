import { lstat, readdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { forEachLimit } from '../core/index.js';
import { ExcludeMatcher } from './exclude.js';

/** Running totals of a scan; read while it runs for progress estimates. */
export interface ScanTotals {
  files: number;
  bytes: number;
  done: boolean;
}

/**
 * Counts files and bytes under `paths` with the backup's excludes, so progress can show an
 * ETA. Errors are ignored: the backup itself reports them.
 */
export async function scanTotals(
  paths: readonly string[],
  options: { excludes?: readonly string[]; oneFileSystem?: boolean; signal?: AbortSignal },
  totals: ScanTotals,
): Promise<ScanTotals> {
  const excludes = new ExcludeMatcher(options.excludes ?? []);
  async function visit(path: Buffer, rootDev: bigint | undefined): Promise<void> {
    if (options.signal?.aborted) return;
    let stats;
    try {
      stats = await lstat(path, { bigint: true });
    } catch {
      return;
    }
    if (stats.isFile()) {
      totals.files += 1;
      totals.bytes += Number(stats.size);
      return;
    }
    if (!stats.isDirectory()) return;
    if (rootDev !== undefined && options.oneFileSystem && stats.dev !== rootDev) return;
    let names: Buffer[];
    try {
      names = await readdir(path, { encoding: 'buffer' });
    } catch {
      return;
    }
    await forEachLimit(names, 4, async (name) => {
      const child = Buffer.concat([path, Buffer.from('/'), name]);
      if (!excludes.empty && excludes.matches(child.toString(), name.toString())) return;
      await visit(child, rootDev ?? stats.dev);
    });
  }
  for (const path of paths) await visit(Buffer.from(resolve(path)), undefined);
  totals.done = true;
  return totals;
}
