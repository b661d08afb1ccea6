// Progress lines on stderr, fatal exits, and machine-specific paths scrubbed from output.

import { ROOT } from './constants.js';

export const started = Date.now();

export function log(message) {
  const t = ((Date.now() - started) / 1000).toFixed(0).padStart(5);
  process.stderr.write(`[${t}s] ${message}\n`);
}

export function fatal(message) {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(1);
}

/** Replaces machine-specific locations in text meant for the results. */
export function scrub(text) {
  return String(text).split(ROOT).join('.');
}
