import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, HTTP_STATUS } from './errors.js';

describe('docs/errors.md', () => {
  const rows = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8')
    .split('\n')
    .map((line) => /^\| `([A-Z_]+)` \| (\d+) \|/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ code: m[1]!, status: Number(m[2]) }));

  it('lists every error code exactly once, and nothing else', () => {
    expect(rows.map((r) => r.code).sort()).toEqual([...ERROR_CODES].sort());
  });

  it('gives each code the HTTP status the code table has', () => {
    for (const row of rows)
      expect(row.status).toBe(HTTP_STATUS[row.code as keyof typeof HTTP_STATUS]);
  });
});
