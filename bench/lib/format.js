// Number formats of the log lines and the results: MiB, KiB, seconds, ratios.

import { KiB, MiB } from './constants.js';

export function fmtMiB(bytes) {
  if (bytes == null || Number.isNaN(bytes)) return 'n/a';
  return `${(bytes / MiB).toLocaleString('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 })} MiB`;
}

/** Like fmtMiB, but amounts under 1 MiB in KiB, so that small ones do not all read 0.0 MiB. */
export function fmtAmount(bytes) {
  if (bytes == null || Number.isNaN(bytes) || Math.abs(bytes) >= MiB) return fmtMiB(bytes);
  return `${(bytes / KiB).toFixed(1)} KiB`;
}

export function fmtSeconds(s) {
  return s < 10 ? `${s.toFixed(2)} s` : `${s.toFixed(1)} s`;
}

export function fmtRatio(r) {
  if (r == null || !Number.isFinite(r)) return '–';
  return r >= 10 ? `${r.toFixed(1)}×` : `${r.toFixed(2)}×`;
}
