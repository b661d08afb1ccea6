import { formatBytes } from '../core/index.js';

/**
 * A time from the API (ISO 8601, UTC) as local ISO time with its offset, to the second:
 * `2025-03-01T02:00:00+01:00`. `-` for none.
 */
export function localTime(iso: string | null | undefined): string {
  if (iso === null || iso === undefined || iso === '') return '-';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const pad = (n: number): string => String(Math.trunc(Math.abs(n))).padStart(2, '0');
  const offset = -date.getTimezoneOffset();
  const zone =
    offset === 0 ? 'Z' : `${offset > 0 ? '+' : '-'}${pad(offset / 60)}:${pad(offset % 60)}`;
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}${zone}`
  );
}

/** Bytes for a table cell: `formatBytes`, or `-` when unknown. */
export function bytesCell(bytes: number | null | undefined): string {
  return bytes === null || bytes === undefined ? '-' : formatBytes(bytes);
}

/**
 * Lines of a table: a header row and one row per entry, columns padded to their widest cell
 * and separated by two spaces. Cells that look like numbers or sizes are right-aligned.
 */
export function table(
  headers: readonly string[],
  rows: ReadonlyArray<readonly string[]>,
): string[] {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = headers.map((_, i) => {
    const cells = rows.map((r) => r[i] ?? '');
    return (
      cells.some((c) => c !== '-') && cells.every((c) => /^(-|[\d.,]+( [KMGTP]?i?B)?)$/.test(c))
    );
  });
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, i) => (numeric[i] ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)];
}

/** Lines of `label: value` pairs with the values aligned; pairs without a value are left out. */
export function details(pairs: ReadonlyArray<readonly [string, string | undefined]>): string[] {
  const shown = pairs.filter((p): p is readonly [string, string] => p[1] !== undefined);
  const width = Math.max(0, ...shown.map(([label]) => label.length + 1));
  return shown.map(([label, value]) => `${(label + ':').padEnd(width)}  ${value}`);
}
