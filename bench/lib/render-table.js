// The Markdown table of one data set's results, and its tar baseline line.

import { HOLDFAST_TOOLS, KiB, MiB } from './constants.js';
import { fmtMiB, fmtRatio, fmtSeconds } from './format.js';
import { tableRows } from './table-rows.js';

/**
 * The Markdown table of one data set: a row per measurement, a column per tool, then each
 * holdfast variant's ratio against each other tool. Failures become references into `notes`.
 */
export function renderTable(result, tools, sourceBytes, notes) {
  const others = tools.filter((t) => !HOLDFAST_TOOLS.includes(t));
  // [subject, other]: each holdfast variant against each other tool.
  const ratioCols = tools
    .filter((t) => HOLDFAST_TOOLS.includes(t))
    .flatMap((h) => others.map((o) => [h, o]));
  const noteRef = (error) => {
    let index = notes.indexOf(error);
    if (index < 0) index = notes.push(error) - 1;
    return `FAILED [${index + 1}]`;
  };
  const rows = tableRows(result, sourceBytes, noteRef);

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
