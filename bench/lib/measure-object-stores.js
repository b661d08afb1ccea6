// Object storage: holdfast's first backup of the tree into each store, and its table.

import fs from 'node:fs';
import path from 'node:path';
import { startStore } from '../object-stores.js';
import { GiB, HOLDFAST_BIN, LOGS, MiB, PASSWORD, ROOT, RUN, WORK } from './constants.js';
import { fmtMiB, fmtSeconds } from './format.js';
import { log, scrub } from './log.js';
import { timed } from './timed.js';
import { baseEnv } from './tools.js';

/** Holdfast's first backup of the tree into each object store; one row per store. */
export function measureObjectStores(source, sourceBytes, stores) {
  const rows = [];
  for (const name of stores) {
    log(`== tree: holdfast into ${name}`);
    let store;
    try {
      store = startStore(name, ROOT, path.join(WORK, `store-${name}`));
    } catch (e) {
      log(`  FAILED ${e.message}`);
      rows.push({ name, ok: false, error: e.message });
      continue;
    }
    try {
      const env = { ...baseEnv(), ...store.env, HOLDFAST_PASSWORD: PASSWORD };
      const statsFile = path.join(LOGS, `store-${name}-stats.json`);
      const init = timed(
        `store-${name}-init`,
        process.execPath,
        [HOLDFAST_BIN, 'init', '--vault', store.vault],
        { cwd: RUN, env },
      );
      const backup = init.ok
        ? timed(
            `store-${name}-backup`,
            process.execPath,
            [HOLDFAST_BIN, 'backup', source, '--vault', store.vault, '--json'],
            { cwd: RUN, env: { ...env, HOLDFAST_BACKEND_STATS: statsFile } },
          )
        : init;
      // Counters that cannot be read cost this row its request figures, not the whole run.
      let traffic = null;
      try {
        traffic = backup.ok ? JSON.parse(fs.readFileSync(statsFile, 'utf8')) : null;
      } catch (e) {
        log(`  ${name}: request counters unreadable (${e.message}); shown as n/a`);
      }
      rows.push({
        name,
        label: store.label,
        sourceBytes,
        ok: backup.ok,
        error: backup.error,
        seconds: backup.seconds,
        rssKiB: backup.rssKiB,
        traffic,
      });
    } finally {
      store.stop();
    }
  }
  return rows;
}

export function renderObjectStores(rows, results) {
  if (rows.length === 0) return '';
  const tree = results.find((r) => r.kind === 'tree');
  const local = tree?.tools.holdfast?.backup1;
  // A store that failed to start has a row without the source's size.
  const sourceBytes = rows.find((r) => r.sourceBytes)?.sourceBytes ?? 0;
  const lines = [
    '',
    '## Object storage: holdfast first backup of the tree',
    '',
    'Servers on this machine (127.0.0.1): the figures show the cost of the protocol and the',
    "request pattern, not a cloud's bandwidth. Requests counted by Holdfast's backend wrappers.",
    '',
    '| target | time | MiB/s | vs local disk | requests | requests per GiB stored | stored |',
    '|---|---|---|---|---|---|---|',
  ];
  if (local?.ok)
    lines.push(
      `| local disk | ${fmtSeconds(local.seconds)} | ${(sourceBytes / MiB / local.seconds).toFixed(0)} | 1.00× | — | — | — |`,
    );
  for (const r of rows) {
    if (!r.ok) {
      lines.push(
        `| ${r.label ?? r.name} | failed: ${scrub(r.error ?? '').slice(0, 120)} | | | | | |`,
      );
      continue;
    }
    const t = r.traffic;
    const ratio = local?.ok ? `${(r.seconds / local.seconds).toFixed(2)}× slower` : '—';
    const counted = t
      ? `${t.requests} | ${(t.bytesWritten > 0 ? t.requests / (t.bytesWritten / GiB) : 0).toFixed(0)} | ${fmtMiB(t.bytesWritten)}`
      : 'n/a | n/a | n/a';
    lines.push(
      `| ${r.label} | ${fmtSeconds(r.seconds)} | ${(sourceBytes / MiB / r.seconds).toFixed(0)} | ${ratio} | ${counted} |`,
    );
  }
  return lines.join('\n') + '\n';
}
