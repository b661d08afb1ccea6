import { HoldfastError } from '../core/index.js';

/** Parses a `*_json` column; a malformed value is catalog damage, reported as INTERNAL. */
export function readJson<T>(text: string, column: string): T {
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw new HoldfastError('INTERNAL', `Catalog column ${column} holds malformed JSON.`, {
      cause: error,
    });
  }
}

/** Serializes a value for a `*_json` column. */
export function writeJson(value: unknown): string {
  return JSON.stringify(value);
}

/** Kysely hands `bigint` columns back as numbers on SQLite and strings on PostgreSQL. */
export function num(value: number | string | bigint): number;
export function num(value: number | string | bigint | null): number | null;
export function num(value: number | string | bigint | null): number | null {
  return value === null ? null : Number(value);
}
