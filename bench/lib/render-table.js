// The Markdown table of one data set's results, and its tar baseline line.

import { HOLDFAST_TOOLS, KiB, MiB } from './constants.js';
import { fmtAmount, fmtMiB, fmtRatio, fmtSeconds } from './format.js';

function peak(steps, names) {
  let best = null;
  for (const n of names) {
    const r = steps[n];
    if (r?.ok && r.rssKiB != null) best = Math.max(best ?? 0, r.rssKiB);
  }
  return best;
}

function cpuTotal(steps, names) {
  let sum = 0;
  for (const n of names) {
    const r = steps[n];
    if (!r?.ok || r.cpu == null) return null;
    sum += r.cpu;
  }
  return sum;
}

export function renderTable(result, tools, sourceBytes, notes) {
  const isTree = result.kind === 'tree';
  const others = tools.filter((t) => !HOLDFAST_TOOLS.includes(t));
  // [subject, other]: each holdfast variant against each other tool.
  const ratioCols = tools
    .filter((t) => HOLDFAST_TOOLS.includes(t))
    .flatMap((h) => others.map((o) => [h, o]));
  const tarX = result.baseline.x?.ok ? result.baseline.x.seconds : null;
  const noteRef = (error) => {
    let index = notes.indexOf(error);
    if (index < 0) index = notes.push(error) - 1;
    return `FAILED [${index + 1}]`;
  };
  const failCell = (r) => {
    if (!r) return 'n/a';
    const ref = noteRef(r.error);
    return r.skipped ? ref.replace('FAILED', 'skipped') : ref;
  };
  // Each row: label, value(tool) -> {text, num}, ratio kind ('time' | 'size' | null).
  const timeRow = (label, name, withRate) => ({
    label,
    ratio: 'time',
    cell: (steps) => {
      const r = steps[name];
      if (!r?.ok) return { text: failCell(r) };
      const extra = [];
      if (withRate) extra.push(`${(sourceBytes / MiB / r.seconds).toFixed(0)} MiB/s`);
      if (r.maxSeconds != null) extra.push(`slowest ${fmtSeconds(r.maxSeconds)}`);
      // The machine path's split, from its own clock (of the one run shown: no repeats).
      const m = r.summary;
      if (m?.captureSeconds != null && r.runs == null)
        extra.push(
          `capture ${fmtSeconds(m.captureSeconds)}, backup ${fmtSeconds(m.backupSeconds)}`,
        );
      const suffix = extra.length ? ` (${extra.join(', ')})` : '';
      return { text: `${fmtSeconds(r.seconds)}${suffix}`, num: r.seconds };
    },
  });
  const readRow = (label, name) => ({
    label,
    ratio: 'size',
    cell: (steps) => {
      const r = steps[name];
      if (!r?.ok) return { text: failCell(r) };
      if (r.io == null) return { text: 'n/a' };
      const m = r.summary;
      const split =
        m?.sourceBytesRead != null
          ? ` (source ${fmtAmount(m.sourceBytesRead)} hashed, mirror ${fmtAmount(m.mirrorBytesRead)})`
          : '';
      return { text: `${fmtAmount(r.io.rchar)}${split}`, num: r.io.rchar };
    },
  });
  const storedRow = (label, name) => ({
    label,
    ratio: 'size',
    cell: (steps) => {
      const r = steps[name];
      if (!r?.ok) return { text: failCell(r) };
      return r.storedBytes == null
        ? { text: 'n/a' }
        : { text: fmtAmount(r.storedBytes), num: r.storedBytes };
    },
  });
  const vaultRow = (label, name) => ({
    label,
    ratio: 'size',
    cell: (steps) => {
      const r = steps[name];
      if (!r?.ok) return { text: failCell(r) };
      return { text: fmtMiB(r.vaultBytes), num: r.vaultBytes };
    },
  });
  const rows = [
    timeRow('backup 1: first', 'backup1', true),
    timeRow('backup 2: unchanged', 'backup2', false),
    timeRow(
      isTree ? 'backup 3: after ~3% of files changed' : 'backup 3: after 2% of blocks changed',
      'backup3',
      false,
    ),
    ...(isTree
      ? []
      : [
          readRow('backup 1: bytes read (rchar)', 'backup1'),
          readRow('backup 2: bytes read (rchar)', 'backup2'),
          readRow('backup 3: bytes read (rchar)', 'backup3'),
          storedRow('backup 1: newly stored (vault growth, du -sb)', 'backup1'),
          storedRow('backup 2: newly stored (vault growth, du -sb)', 'backup2'),
          storedRow('backup 3: newly stored (vault growth, du -sb)', 'backup3'),
        ]),
    timeRow('restore latest point', 'restore', true),
    {
      label: `restore ÷ tar -x${isTree ? '' : 'S'} time`,
      ratio: null,
      cell: (steps) => {
        const r = steps.restore;
        if (!r?.ok || tarX == null) return { text: 'n/a' };
        return { text: fmtRatio(r.seconds / tarX) };
      },
    },
    {
      label: isTree ? 'restore verified (paths, sizes, SHA-1)' : 'restore verified (cmp)',
      ratio: null,
      cell: (steps) => {
        const r = steps.restore;
        if (!r?.ok) return { text: 'n/a' };
        if (!r.check.ok)
          return { text: `**${noteRef(r.check.detail).replace('FAILED', 'MISMATCH')}**` };
        return { text: r.check.mtimeDiffers ? `ok (${r.check.mtimeDiffers} mtimes differ)` : 'ok' };
      },
    },
  ];
  if (!isTree) {
    rows.push({
      label: 'restored image allocated (du -B1)',
      ratio: 'size',
      cell: (steps) => {
        const r = steps.restore;
        if (!r?.ok || r.check?.allocated == null) return { text: 'n/a' };
        const share = ((r.check.allocated / r.check.apparent) * 100).toFixed(0);
        const holes =
          result.sourceAllocated != null && r.check.allocated <= result.sourceAllocated * 1.1
            ? 'holes kept'
            : r.check.allocated >= r.check.apparent * 0.9
              ? 'holes filled'
              : 'holes partly kept';
        return {
          text: `${fmtMiB(r.check.allocated)} (${share}%, ${holes})`,
          num: r.check.allocated,
        };
      },
    });
  }
  rows.push(
    vaultRow('vault size after backup 1 (du -sb)', 'backup1'),
    vaultRow('vault size after backup 3 (du -sb)', 'backup3'),
    {
      label: 'peak RSS (max over all runs)',
      ratio: 'size',
      cell: (steps) => {
        const p = peak(steps, ['backup1', 'backup2', 'backup3', 'restore']);
        return p == null ? { text: 'n/a' } : { text: fmtMiB(p * KiB), num: p };
      },
    },
    {
      label: 'CPU time of backup 1 (user+sys)',
      ratio: 'time',
      cell: (steps) => {
        const c = cpuTotal(steps, ['backup1']);
        return c == null ? { text: 'n/a' } : { text: fmtSeconds(c), num: c };
      },
    },
    {
      label: 'CPU time, 3 backups + restore (user+sys)',
      ratio: 'time',
      cell: (steps) => {
        const c = cpuTotal(steps, ['backup1', 'backup2', 'backup3', 'restore']);
        return c == null ? { text: 'n/a' } : { text: fmtSeconds(c), num: c };
      },
    },
  );

  const header = ['measurement', ...tools, ...ratioCols.map(([h, o]) => `${h} vs ${o}`)];
  const lines = [
    `| ${header.join(' | ')} |`,
    `| ${header.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`,
  ];
  for (const row of rows) {
    const cells = tools.map((t) => row.cell(result.tools[t] ?? {}));
    const byTool = Object.fromEntries(tools.map((t, i) => [t, cells[i]]));
    const ratios = ratioCols.map(([subject, o]) => {
      const h = byTool[subject]?.num;
      const v = byTool[o]?.num;
      if (row.ratio == null || h == null || v == null || h === 0 || v === 0) return '–';
      return fmtRatio(row.ratio === 'time' ? v / h : h / v);
    });
    lines.push(`| ${[row.label, ...cells.map((c) => c.text), ...ratios].join(' | ')} |`);
  }
  return lines.join('\n');
}

export function renderBaseline(result, sourceBytes) {
  const b = result.baseline;
  const fmt = (r) =>
    r?.ok
      ? `${fmtSeconds(r.seconds)} (${(sourceBytes / MiB / r.seconds).toFixed(0)} MiB/s, ` +
        (r.maxSeconds != null ? `slowest ${fmtSeconds(r.maxSeconds)}, ` : '') +
        `peak RSS ${fmtMiB(r.rssKiB * KiB)})`
      : `FAILED: ${r?.error ?? 'n/a'}`;
  const s = result.kind === 'tree' ? '' : 'S';
  const lines = [
    `Baseline (the ${result.kind === 'tree' ? 'tree' : 'image'} as restored, after the change; measured after the restores): ` +
      `\`tar -c${s}f\` ${fmt(b.c)}; \`tar -x${s}f\` into an empty directory ${fmt(b.x)}` +
      (b.check ? `; extraction check: ${b.check.ok ? 'ok' : b.check.detail}` : '') +
      '.',
  ];
  return lines.join('\n');
}
