import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isHoldfastError } from '../core/index.js';
import { selectForget, type ForgetPolicy } from './forget-policy.js';
import type { Point } from './point.js';

function point(id: string, time: string, extra: Partial<Point> = {}): Point {
  return {
    v: 1,
    id,
    time,
    host: 'h1',
    user: 'u',
    paths: ['/data'],
    tags: [],
    tree: '0'.repeat(64),
    consistency: 'crash',
    stats: {
      files: 0,
      dirs: 0,
      others: 0,
      bytes: 0,
      filesRead: 0,
      newBytes: 0,
      storedBytes: 0,
      errors: 0,
      durationMs: 0,
    },
    program: 'test',
    ...extra,
  };
}

const ids = (list: ReadonlyArray<Point | { point: Point }>): string[] =>
  list.map((p) => ('point' in p ? p.point.id : p.id)).sort();

function expectUsage(run: () => unknown): void {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  expect(isHoldfastError(caught, 'USAGE_INVALID')).toBe(true);
}

describe('selectForget', () => {
  it('keeps the newest of each recent day and says why', () => {
    const points = [
      point('a', '2024-03-08T10:00:00Z'),
      point('b', '2024-03-09T08:00:00Z'),
      point('c', '2024-03-09T20:00:00Z'),
      point('d', '2024-03-10T01:00:00Z'),
      point('e', '2024-03-10T02:00:00Z'),
    ];
    const result = selectForget(points, { keepDaily: 2 });
    expect(ids(result.keep)).toEqual(['c', 'e']);
    expect(ids(result.remove)).toEqual(['a', 'b', 'd']);
    expect(result.keep.find((k) => k.point.id === 'e')?.reasons).toEqual(['daily']);
  });

  it('judges buckets in the given time zone', () => {
    // 23:30 UTC is 00:30 the next day in Berlin: one day in UTC, two days there.
    const points = [point('noon', '2024-03-10T12:00:00Z'), point('late', '2024-03-10T23:30:00Z')];
    expect(ids(selectForget(points, { keepDaily: 5 }).keep)).toEqual(['late']);
    const berlin = selectForget(points, { keepDaily: 5 }, { timeZone: 'Europe/Berlin' });
    expect(ids(berlin.keep)).toEqual(['late', 'noon']);
    const hourly = selectForget(points, { keepHourly: 5 }, { timeZone: 'Asia/Kolkata' });
    expect(ids(hourly.keep)).toEqual(['late', 'noon']);
  });

  it('uses ISO weeks, months and years', () => {
    const points = [
      point('sun', '2024-12-29T12:00:00Z'), // 2024-W52
      point('mon', '2024-12-30T12:00:00Z'), // 2025-W1
      point('sun2', '2025-01-05T12:00:00Z'), // 2025-W1
    ];
    expect(ids(selectForget(points, { keepWeekly: 10 }).keep)).toEqual(['sun', 'sun2']);
    expect(ids(selectForget(points, { keepMonthly: 10 }).keep)).toEqual(['mon', 'sun2']);
    expect(ids(selectForget(points, { keepYearly: 1 }).keep)).toEqual(['sun2']);
    expect(ids(selectForget(points, { keepYearly: 2 }).keep)).toEqual(['mon', 'sun2']);
  });

  it('evaluates each host and path set separately', () => {
    const points = [
      point('a1', '2024-01-01T00:00:00Z'),
      point('a2', '2024-01-02T00:00:00Z', { paths: ['/data'] }),
      point('b1', '2024-01-03T00:00:00Z', { host: 'h2' }),
      point('c1', '2024-01-04T00:00:00Z', { paths: ['/x', '/data'] }),
      point('c2', '2024-01-05T00:00:00Z', { paths: ['/data', '/x'] }),
    ];
    const result = selectForget(points, { keepLast: 1 });
    expect(ids(result.keep)).toEqual(['a2', 'b1', 'c2']);
    expect(result.groups.map((g) => [g.host, g.paths.join(',')]).sort()).toEqual([
      ['h1', '/data'],
      ['h1', '/data,/x'],
      ['h2', '/data'],
    ]);
  });

  it('keeps by tag and within a duration of the newest point', () => {
    const points = [
      point('old', '2024-01-01T00:00:00Z', { tags: ['monthly-db'] }),
      point('mid', '2024-01-05T00:00:00Z'),
      point('new', '2024-01-05T20:00:00Z'),
    ];
    const tagged = selectForget(points, { keepTags: ['monthly-db'] });
    expect(ids(tagged.keep)).toEqual(['new', 'old']);
    expect(tagged.keep.find((k) => k.point.id === 'new')?.reasons).toEqual(['newest']);
    const within = selectForget(points, { keepWithin: 24 * 3600_000 });
    expect(ids(within.keep)).toEqual(['mid', 'new']);
  });

  it('keeps points whose time cannot be read', () => {
    const points = [point('bad', 'not a time'), point('ok', '2024-01-01T00:00:00Z')];
    const result = selectForget(points, { keepLast: 1 });
    expect(ids(result.keep)).toEqual(['bad', 'ok']);
    expect(result.keep.find((k) => k.point.id === 'ok')?.reasons).toEqual(['last']);
  });

  it('refuses a policy that keeps nothing, and malformed values', () => {
    const points = [point('a', '2024-01-01T00:00:00Z')];
    expectUsage(() => selectForget(points, {}));
    expectUsage(() => selectForget(points, { keepLast: 0, keepDaily: 0, keepTags: [] }));
    expectUsage(() => selectForget(points, { keepLast: -1 }));
    expectUsage(() => selectForget(points, { keepDaily: 1.5 }));
    expectUsage(() => selectForget(points, { keepWithin: Number.NaN }));
    expectUsage(() => selectForget(points, { keepLast: 1 }, { timeZone: 'Mars/Olympus' }));
    expect(selectForget(points, { keepYearly: Infinity }).keep).toHaveLength(1);
  });
});

const pointsArb = fc
  .array(
    fc.record({
      ms: fc.integer({ min: Date.UTC(2020, 0, 1), max: Date.UTC(2026, 0, 1) }),
      host: fc.constantFrom('h1', 'h2'),
      paths: fc.constantFrom(['/a'], ['/a', '/b'], ['/b', '/a']),
      tags: fc.subarray(['x', 'y']),
    }),
    { maxLength: 40 },
  )
  .map((rows) =>
    rows.map((r, i) =>
      point(`p${i}`, new Date(r.ms).toISOString(), { host: r.host, paths: r.paths, tags: r.tags }),
    ),
  );

const count = fc.option(fc.integer({ min: 0, max: 6 }), { nil: undefined });
const policyArb = fc
  .record({
    keepLast: count,
    keepHourly: count,
    keepDaily: count,
    keepWeekly: count,
    keepMonthly: count,
    keepYearly: count,
    keepWithin: fc.option(fc.integer({ min: 0, max: 90 * 86_400_000 }), { nil: undefined }),
    keepTags: fc.option(fc.subarray(['x', 'y', 'z']), { nil: undefined }),
  })
  .map((r) => {
    const policy: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(r)) if (v !== undefined) policy[k] = v;
    return policy as ForgetPolicy;
  })
  .filter(
    (p) =>
      [p.keepLast, p.keepHourly, p.keepDaily, p.keepWeekly, p.keepMonthly, p.keepYearly].some(
        (n) => (n ?? 0) > 0,
      ) ||
      (p.keepWithin ?? 0) > 0 ||
      (p.keepTags?.length ?? 0) > 0,
  );
const zoneArb = fc.constantFrom('UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Kathmandu');

describe('selectForget properties', () => {
  it('partitions the input', () => {
    fc.assert(
      fc.property(pointsArb, policyArb, zoneArb, (points, policy, timeZone) => {
        const result = selectForget(points, policy, { timeZone });
        const kept = result.keep.map((k) => k.point.id);
        const removed = result.remove.map((p) => p.id);
        expect(new Set([...kept, ...removed]).size).toBe(kept.length + removed.length);
        expect([...kept, ...removed].sort()).toEqual(points.map((p) => p.id).sort());
        expect(result.keep.every((k) => k.reasons.length > 0)).toBe(true);
      }),
    );
  });

  it('always keeps the newest point of each group', () => {
    fc.assert(
      fc.property(pointsArb, policyArb, zoneArb, (points, policy, timeZone) => {
        const result = selectForget(points, policy, { timeZone });
        for (const group of result.groups) {
          const all = [...group.keep.map((k) => k.point), ...group.remove];
          const newest = Math.max(...all.map((p) => Date.parse(p.time)));
          expect(group.keep.some((k) => Date.parse(k.point.time) === newest)).toBe(true);
        }
      }),
    );
  });

  it('keepLast N keeps at least min(N, group size) per group', () => {
    fc.assert(
      fc.property(pointsArb, policyArb, fc.integer({ min: 1, max: 8 }), (points, policy, n) => {
        const result = selectForget(points, { ...policy, keepLast: n });
        for (const group of result.groups) {
          const size = group.keep.length + group.remove.length;
          expect(group.keep.length).toBeGreaterThanOrEqual(Math.min(n, size));
          const newestRemoved = Math.max(...group.remove.map((p) => Date.parse(p.time)));
          const lastKept = group.keep.filter((k) => k.reasons.includes('last'));
          expect(lastKept).toHaveLength(Math.min(n, size));
          for (const k of lastKept)
            expect(Date.parse(k.point.time)).toBeGreaterThanOrEqual(newestRemoved);
        }
      }),
    );
  });
});
