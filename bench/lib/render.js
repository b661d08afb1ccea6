// The Markdown results: the run's facts and method, then each data set's table.

import { TREE_SOURCE } from './constants.js';
import { fmtMiB } from './format.js';
import { renderBaseline, renderTable } from './render-table.js';
import { loadSamples } from './timed.js';
import { TOOLS, toolsFor } from './tools.js';

export function render({
  opts,
  profileName,
  data,
  facts,
  versions,
  results,
  loadStart,
  loadEnd,
  seconds,
}) {
  const out = [];
  const notes = [];
  const mean = loadSamples.reduce((a, b) => a + b, 0) / Math.max(1, loadSamples.length);
  const load =
    `${loadStart} at start, ${loadEnd} at end, mean ${mean.toFixed(2)} and max ` +
    `${Math.max(0, ...loadSamples).toFixed(2)} after the measured commands`;
  out.push(`# Holdfast benchmark: ${opts.tools.join(' / ')}`);
  out.push('');
  out.push(
    `- date: ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC; profile: ${profileName}; run time ${(seconds / 60).toFixed(1)} min`,
  );
  out.push(
    `- machine: ${facts.nproc} cores (${facts.cpu}), ${facts.memGiB} GiB RAM, ${facts.kernel}, bench/work on ${facts.fsType}${facts.runFsType && facts.runFsType !== facts.fsType ? ` (the working copy bench/work/run and the mirrors on ${facts.runFsType}, loop-mounted, reflink on)` : ''}; ` +
      `1-minute load average ${load} (the machine is shared: above ${facts.nproc} means other work competed)`,
  );
  out.push(
    `- software: node ${facts.node}; ${facts.tar}; ${opts.tools.map((t) => versions[t] ?? `${t}: unknown`).join('; ')}`,
  );
  const tr = data.tree;
  out.push(
    `- tree: first ${fmtMiB(tr.bytes)} of ${TREE_SOURCE} in sorted order: ${tr.files} files, ${tr.symlinks} symlinks, ` +
      `${tr.dirs} directories (mtimes kept, hard links copied as separate files)`,
  );
  const im = data.image;
  out.push(
    `- disk image: ${fmtMiB(im.size)} sparse file, ${im.blocks.length} data extents of 1 MiB (${fmtMiB(im.allocated)} allocated): ` +
      `${im.kinds.random} random, ${im.kinds.text} log text, ${im.kinds.records} database-like pages`,
  );
  out.push(
    `- settings: ${opts.tools.map((t) => `${t}: ${TOOLS[t].settings}`).join('; ')}. ` +
      'Caches live in bench/work and are empty before the first backup.',
  );
  const times =
    opts.repeat === 1
      ? 'once'
      : `${opts.repeat} times (shown: fastest run, as load from other work only adds time, and the ` +
        'slowest; median vault size; max RSS; least CPU time; bytes read, newly stored and the ' +
        "machine path's split from the last run)";
  out.push(
    `- method: each command runs ${times} under \`/usr/bin/time -f "%e %M %U %S"\` (wall seconds, peak RSS); page cache warm ` +
      '(the data is read once before each first backup), `sync` after every command, outside the timing. ' +
      'Ratio columns: for times other ÷ holdfast (above 1 means holdfast is faster), ' +
      'for sizes and memory holdfast ÷ other (below 1 means holdfast uses less).',
  );
  for (const r of results) {
    out.push('');
    if (r.kind === 'tree') {
      const c = r.change;
      out.push(`## Tree (${fmtMiB(data.tree.bytes)}, ${data.tree.files} files)`);
      out.push('');
      out.push(
        `Small change before backup 3: ${c.files} files (${((c.files / data.tree.files) * 100).toFixed(1)}%): ` +
          `${c.appended} appended to, ${c.rewritten} rewritten in the middle (up to 4 KiB), ${c.touched} only touched; ` +
          `all get a new mtime. Restore is of the latest point (after the change).`,
      );
      out.push('');
      out.push(renderTable(r, toolsFor('tree', opts.tools), data.tree.bytes, notes));
      out.push('');
      out.push(renderBaseline(r, data.tree.bytes));
    } else {
      out.push(
        `## Disk image (${fmtMiB(data.image.size)} apparent, ${fmtMiB(data.image.allocated)} allocated)`,
      );
      out.push('');
      out.push(
        `Small change before backup 3: ${r.change.blocks} of ${data.image.blocks.length} data blocks overwritten ` +
          'with new random data' +
          (r.change.throughQemu
            ? ', written through qemu-storage-daemon (a writable NBD export and qemu-io) so that its ' +
              'dirty bitmap sees them; the same bytes for every tool'
            : '') +
          `. Throughput is against the ${fmtMiB(data.image.size)} apparent size. ` +
          'Bytes read: the rchar counter of /proc/self/io across the command (its reaped children ' +
          'included): every byte its read() calls returned, holes as zeros and page cache included, ' +
          'also program files, vault, index and cache reads. For holdfast-machine and holdfast-qemu ' +
          "the brackets split it by their own counters: the capture's read of the source (every block " +
          'holding data hashed against the block map, holes known from the extent map not read; for ' +
          "holdfast-qemu after its first capture only the blocks the daemon's dirty bitmap names) " +
          "and the backup's read of the mirror. Newly stored: growth of the vault " +
          'directory (`du -sb`) over the backup.',
      );
      out.push('');
      out.push(renderTable(r, toolsFor('disk', opts.tools), data.image.size, notes));
      out.push('');
      out.push(renderBaseline(r, data.image.size));
    }
  }
  if (notes.length) {
    out.push('');
    out.push('Notes:');
    out.push('');
    notes.forEach((n, i) => out.push(`${i + 1}. ${n.replace(/\|/g, '\\|')}`));
  }
  out.push('');
  return out.join('\n');
}
