import { HoldfastError } from '../core/index.js';

/** Commander reducer for repeatable options: `--exclude a --exclude b` → `['a', 'b']`. */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** A whole number from `--<flag>`, or undefined when the option was not given. */
export function wholeNumber(flag: string, value: string | undefined, min = 0): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < min) {
    throw new HoldfastError(
      'USAGE_INVALID',
      `--${flag} takes a whole number${min > 0 ? ` of at least ${min}` : ''}, not '${value}'.`,
    );
  }
  return n;
}

/**
 * Refuses a vault NAME that is really a location (a path or URL), with a message that tells
 * the two apart: the server knows vaults by name; locations are for `vault create --location`
 * and for direct access (`--vault <location>` on the direct commands).
 */
export function vaultName(value: string, where: string): string {
  if (/[/\\]|^[.~]|:\/\//.test(value)) {
    throw new HoldfastError(
      'USAGE_INVALID',
      `${where} takes the NAME of a vault on the server (see 'holdfast vault list'), but '${value}' ` +
        `looks like a location. Give a vault a name with 'holdfast vault create <name> --location <dir>'.`,
    );
  }
  return value;
}

/** Adds `key: value` to an object only when the value is defined (exactOptionalPropertyTypes). */
export function defined<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}
