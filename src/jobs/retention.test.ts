import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isHoldfastError } from '../core/index.js';
import type { RetentionRules } from './policy.js';
import {
  expiredPoints,
  expiryWhenRecorded,
  planExpiry,
  type RetentionPoint,
  type StoredRetentionPoint,
} from './retention.js';
import { nextRunAfter } from './schedule.js';
import { parseScheduleText } from './schedule-text.js';

const DAY = 86_400_000;
const BERLIN = 'Europe/Berlin';
const NEW_YORK = 'America/New_York';
const at = (iso: string): number => Date.parse(iso);

const wallFormats = new Map<string, Intl.DateTimeFormat>();
/** `ms` as wall-clock text in `timeZone`, `YYYY-MM-DD HH:MM`, which sorts like time does. */
function wall(ms: number, timeZone: string): string {
  let format = wallFormats.get(timeZone);
  if (format === undefined) {
    format = new Intl.DateTimeFormat('sv-SE', {
      timeZone,
      hourCycle: 'h23',
      dateStyle: 'short',
      timeStyle: 'short',
    });
    wallFormats.set(timeZone, format);
  }
  return format.format(ms);
}

function expiryOf(points: RetentionPoint[], rules: RetentionRules, zone: string, id: string) {
  return planExpiry(points, rules, zone).get(id);
}

describe('planExpiry', () => {
  it('keeps every point `daily` times 24 hours, whatever DST does to the wall clock', () => {
    const time = at('2024-03-28T12:00:00+01:00');
    const expiry = expiryOf([{ id: 'a', time }], { daily: 7 }, BERLIN, 'a');
    expect(expiry).toBe(time + 7 * DAY);
    expect(expiry).toBe(at('2024-04-04T13:00:00+02:00'));
  });

  it('keeps the first point of each ISO week `weekly` weeks, and only the first', () => {
    // Monday 2024-01-01 to Monday 2024-01-08, one point a day at noon.
    const points = Array.from({ length: 8 }, (_, day) => ({
      id: `d${day}`,
      time: at('2024-01-01T12:00:00+01:00') + day * DAY,
    }));
    const plan = planExpiry(points, { daily: 1, weekly: 2 }, BERLIN);
    expect(plan.get('d0')).toBe(at('2024-01-15T12:00:00+01:00'));
    expect(plan.get('d1')).toBe(at('2024-01-03T12:00:00+01:00'));
    expect(plan.get('d6')).toBe(at('2024-01-08T12:00:00+01:00'));
    expect(plan.get('d7')).toBe(at('2024-01-22T12:00:00+01:00'));
  });

  it('judges weeks in the policy time zone', () => {
    // 23:30 UTC on Sunday is already Monday in Berlin.
    const points = [
      { id: 'sunday', time: at('2024-01-07T12:00:00Z') },
      { id: 'late', time: at('2024-01-07T23:30:00Z') },
    ];
    const rules = { daily: 1, weekly: 1 };
    expect(expiryOf(points, rules, BERLIN, 'late')).toBe(at('2024-01-14T23:30:00Z'));
    expect(expiryOf(points, rules, 'UTC', 'late')).toBe(at('2024-01-08T23:30:00Z'));
  });

  it('counts months and years on the calendar, clamped to the end of the month', () => {
    const jan31 = [{ id: 'a', time: at('2024-01-31T10:00:00Z') }];
    expect(expiryOf(jan31, { daily: 1, monthly: 1 }, 'UTC', 'a')).toBe(at('2024-02-29T10:00:00Z'));
    expect(expiryOf(jan31, { daily: 1, monthly: 13 }, 'UTC', 'a')).toBe(at('2025-02-28T10:00:00Z'));
    const leapDay = [{ id: 'a', time: at('2024-02-29T10:00:00Z') }];
    expect(expiryOf(leapDay, { daily: 1, yearly: 1 }, 'UTC', 'a')).toBe(at('2025-02-28T10:00:00Z'));
    expect(expiryOf(leapDay, { daily: 1, yearly: 4 }, 'UTC', 'a')).toBe(at('2028-02-29T10:00:00Z'));
  });

  it('keeps the wall-clock time across DST, moving forward out of a gap and late in a repeat', () => {
    const rules = { daily: 1, monthly: 1 };
    const march1 = [{ id: 'a', time: at('2024-03-01T02:00:00+01:00') }];
    expect(expiryOf(march1, rules, BERLIN, 'a')).toBe(at('2024-04-01T02:00:00+02:00'));
    // 2024-03-31 02:30 does not exist in Berlin; 2024-10-27 02:30 exists twice.
    const jan31 = [{ id: 'a', time: at('2024-01-31T02:30:00+01:00') }];
    expect(expiryOf(jan31, { daily: 1, monthly: 2 }, BERLIN, 'a')).toBe(
      at('2024-03-31T03:30:00+02:00'),
    );
    const sep29 = [{ id: 'a', time: at('2024-09-29T02:30:00+02:00') }];
    expect(expiryOf(sep29, { daily: 1, weekly: 4 }, BERLIN, 'a')).toBe(
      at('2024-10-27T02:30:00+01:00'),
    );
  });

  it('gives a point the latest expiry of the rules that select it', () => {
    const points = [{ id: 'a', time: at('2024-01-01T00:00:00Z') }];
    expect(expiryOf(points, { daily: 400, monthly: 1, yearly: 1 }, 'UTC', 'a')).toBe(
      at('2024-01-01T00:00:00Z') + 400 * DAY,
    );
    expect(expiryOf(points, { daily: 1, weekly: 1, monthly: 1, yearly: 2 }, 'UTC', 'a')).toBe(
      at('2026-01-01T00:00:00Z'),
    );
  });

  const history = fc
    .uniqueArray(fc.integer({ min: 0, max: 3 * 365 * 24 * 60 }), { minLength: 1, maxLength: 60 })
    .map((minutes) =>
      [...minutes]
        .sort((a, b) => a - b)
        .map((minute, index) => ({
          id: `p${index}`,
          time: at('2024-01-01T00:00:00Z') + minute * 60_000,
        })),
    );
  const rules: RetentionRules = { daily: 3, weekly: 2, monthly: 3, yearly: 1 };

  it('does not depend on input order, and newer points never change older expiries', () => {
    fc.assert(
      fc.property(history, fc.nat(), (points, cut) => {
        const plan = planExpiry(points, rules, NEW_YORK);
        expect(planExpiry([...points].reverse(), rules, NEW_YORK)).toEqual(plan);
        const older = points.slice(0, (cut % points.length) + 1);
        for (const [id, expiry] of planExpiry(older, rules, NEW_YORK)) {
          expect(expiry).toBe(plan.get(id));
        }
      }),
      { seed: 42, numRuns: 60 },
    );
  });

  it('gives the same expiry as expiryWhenRecorded with only the previous point known', () => {
    fc.assert(
      fc.property(history, (points) => {
        const plan = planExpiry(points, rules, BERLIN);
        points.forEach((point, index) => {
          const previous = points[index - 1]?.time;
          expect(expiryWhenRecorded(point.time, previous, rules, BERLIN)).toBe(plan.get(point.id));
        });
      }),
      { seed: 43, numRuns: 60 },
    );
  });

  it('refuses invalid rules, an unknown zone and a point listed twice', () => {
    const codeOf = (run: () => unknown): string => {
      try {
        run();
      } catch (error) {
        return isHoldfastError(error) ? `${error.code}: ${error.message}` : String(error);
      }
      return 'nothing thrown';
    };
    const points = [{ id: 'a', time: 0 }];
    expect(codeOf(() => planExpiry(points, { daily: 0 }, 'UTC'))).toBe(
      'POLICY_INVALID: retention.daily: must be an integer from 1 to 9999 (got 0)',
    );
    expect(codeOf(() => planExpiry(points, { daily: 1 }, 'Nowhere/City'))).toMatch(
      /^POLICY_INVALID: timezone:/,
    );
    expect(codeOf(() => planExpiry([...points, ...points], { daily: 1 }, 'UTC'))).toMatch(
      /^INTERNAL: Recovery point a is listed twice/,
    );
  });
});

describe('expiredPoints', () => {
  const points = [
    { id: 'old', time: at('2024-01-01T00:00:00Z') },
    { id: 'mid', time: at('2024-01-02T00:00:00Z') },
    { id: 'new', time: at('2024-01-03T00:00:00Z') },
  ];

  it('returns the points whose expiry has come, oldest first, an expiry equal to now included', () => {
    const now = at('2024-01-03T00:00:00Z');
    expect(expiredPoints(points, { daily: 1 }, 'UTC', now, { keepNewest: false })).toEqual([
      'old',
      'mid',
    ]);
    expect(expiredPoints(points, { daily: 1 }, 'UTC', now - 1, { keepNewest: false })).toEqual([
      'old',
    ]);
  });

  it('never returns the newest point with keepNewest', () => {
    const later = at('2030-01-01T00:00:00Z');
    expect(expiredPoints(points, { daily: 1 }, 'UTC', later, { keepNewest: true })).toEqual([
      'old',
      'mid',
    ]);
    expect(expiredPoints(points, { daily: 1 }, 'UTC', later, { keepNewest: false })).toHaveLength(
      3,
    );
  });

  it('uses the expiry stored with a point over one computed now', () => {
    const stored: StoredRetentionPoint[] = [
      { ...points[0]!, expiry: at('2099-01-01T00:00:00Z') },
      { ...points[1]!, expiry: at('2024-01-02T00:00:01Z') },
      points[2]!,
    ];
    const now = at('2024-01-10T00:00:00Z');
    expect(expiredPoints(stored, { daily: 1 }, 'UTC', now, { keepNewest: false })).toEqual([
      'mid',
      'new',
    ]);
  });

  it('never promotes a point when the first of its week has been deleted', () => {
    // Rules and times as a daily 02:00 schedule in Berlin would record them.
    const rules = { daily: 7, weekly: 4 };
    const [monday, tuesday, wednesday, thursday] = [1, 2, 3, 4].map((day) => ({
      id: `jan${day}`,
      time: at(`2024-01-0${day}T02:00:00+01:00`),
    }));
    const record = (point: RetentionPoint, previous?: RetentionPoint) => ({
      ...point,
      expiry: expiryWhenRecorded(point.time, previous?.time, rules, BERLIN),
    });
    const stored = [record(monday!), record(tuesday!, monday), record(wednesday!, tuesday)];
    expect(stored.map((point) => point.expiry - point.time)).toEqual([28 * DAY, 7 * DAY, 7 * DAY]);
    // Monday's point is deleted by hand. Recomputed from the survivors, Tuesday's would now
    // pass for the first of the week and be kept four weeks: that is why expiries are stored.
    const survivors = stored.slice(1);
    expect(expiryOf(survivors, rules, BERLIN, 'jan2')).toBe(tuesday!.time + 28 * DAY);
    const nextTuesday = at('2024-01-09T02:00:00+01:00');
    expect(expiredPoints(survivors, rules, BERLIN, nextTuesday, { keepNewest: true })).toEqual([
      'jan2',
    ]);
    // A point recorded after the deletion is judged against the last recorded point, deleted
    // or not, so it is not the week's first either.
    expect(record(thursday!, wednesday).expiry).toBe(thursday!.time + 7 * DAY);
  });
});

/**
 * Runs a schedule from `from` to `to` as the control plane does: at each run a point is
 * recorded with the expiry computed then, and every point whose stored expiry has come is
 * deleted, except the newest.
 */
function simulate(text: string, zone: string, rules: RetentionRules, from: string, to: string) {
  const schedule = parseScheduleText(text);
  const recorded: number[] = [];
  let kept: StoredRetentionPoint[] = [];
  let run = nextRunAfter(schedule, zone, at(from) - 1);
  let now = run;
  while (run < at(to)) {
    now = run;
    const point = { id: String(run), time: run };
    const previous = recorded.at(-1);
    const expiry = expiryWhenRecorded(run, previous, rules, zone);
    // Retention never deletes a period's first point before its period has ended, so judging
    // among the surviving points gives the same answer as judging among all ever recorded.
    // Checked at each day's first run, where every week's, month's and year's first falls.
    if (
      previous === undefined ||
      wall(previous, zone).slice(0, 10) !== wall(run, zone).slice(0, 10)
    )
      expect(expiryOf([...kept, point], rules, zone, point.id)).toBe(expiry);
    recorded.push(run);
    kept.push({ ...point, expiry });
    const expired = new Set(expiredPoints(kept, rules, zone, now, { keepNewest: true }));
    kept = kept.filter((p) => !expired.has(p.id));
    run = nextRunAfter(schedule, zone, run);
  }
  return { recorded, kept: kept.map((p) => p.time), now };
}

type FullRules = { [rule in keyof RetentionRules]-?: number };

/**
 * What the rules promise, worked out independently from wall-clock text: points younger than
 * `daily` days, and the first point of each week, month and year whose first point is younger
 * than `weekly` weeks, `monthly` months and `yearly` years.
 */
function promised(recorded: number[], zone: string, rules: FullRules, now: number) {
  const nowText = wall(now, zone);
  const shifted = (ms: number, days: number, months: number): string => {
    const [date = '', time = ''] = wall(ms, zone).split(' ');
    const [y = 0, m = 0, d = 0] = date.split('-').map(Number);
    // Both simulations run daily, so every month's first point falls on the 1st: no clamping.
    const moved = new Date(Date.UTC(y, m - 1 + months, d + days));
    return `${moved.toISOString().slice(0, 10)} ${time}`;
  };
  const firsts = (key: (text: string) => string): Map<string, number> => {
    const map = new Map<string, number>();
    for (const ms of recorded) if (!map.has(key(wall(ms, zone)))) map.set(key(wall(ms, zone)), ms);
    return map;
  };
  const mondayOf = (text: string): string => {
    const date = new Date(`${text.slice(0, 10)}T00:00:00Z`);
    date.setUTCDate(date.getUTCDate() - ((date.getUTCDay() + 6) % 7));
    return date.toISOString().slice(0, 10);
  };
  const kept = new Set(recorded.filter((ms) => now - ms < rules.daily * DAY));
  for (const ms of firsts(mondayOf).values())
    if (shifted(ms, 7 * rules.weekly, 0) > nowText) kept.add(ms);
  for (const ms of firsts((text) => text.slice(0, 7)).values())
    if (shifted(ms, 0, rules.monthly) > nowText) kept.add(ms);
  for (const ms of firsts((text) => text.slice(0, 4)).values())
    if (shifted(ms, 0, 12 * rules.yearly) > nowText) kept.add(ms);
  return [...kept].sort((a, b) => a - b);
}

describe('months of simulated schedule', () => {
  const rules = { daily: 7, weekly: 4, monthly: 6, yearly: 2 };

  it('keep exactly the GFS points the rules promise: daily 02:00 in Berlin for 800 days', () => {
    const { recorded, kept, now } = simulate(
      'daily 02:00',
      BERLIN,
      rules,
      '2024-01-01T00:00:00+01:00',
      '2026-03-11T00:00:00+01:00',
    );
    expect(recorded).toHaveLength(800);
    expect(wall(now, BERLIN)).toBe('2026-03-10 02:00');
    expect(kept).toEqual(promised(recorded, BERLIN, rules, now));
    expect(kept.map((ms) => wall(ms, BERLIN).slice(0, 10))).toEqual([
      '2025-01-01', // first of 2025: kept until 2027 (2024's went on 2026-01-01)
      '2025-10-01', // firsts of the last six months (2025-09-01 went on 2026-03-01)
      '2025-11-01',
      '2025-12-01',
      '2026-01-01',
      '2026-02-01',
      '2026-02-16', // Monday: first of its week, kept until 2026-03-16
      '2026-02-23',
      '2026-03-01',
      '2026-03-02',
      '2026-03-04', // the last seven days (2026-03-03 02:00 is exactly 7 × 24 h old)
      '2026-03-05',
      '2026-03-06',
      '2026-03-07',
      '2026-03-08',
      '2026-03-09', // also a Monday
      '2026-03-10',
    ]);
  });

  it('keep exactly the GFS points the rules promise: every 6h in New York for 800 days', () => {
    const { recorded, kept, now } = simulate(
      'every 6h',
      NEW_YORK,
      rules,
      '2024-01-01T00:00:00-05:00',
      '2026-03-11T00:00:00-04:00',
    );
    expect(recorded).toHaveLength(800 * 4);
    expect(wall(now, NEW_YORK)).toBe('2026-03-10 18:00');
    expect(kept).toEqual(promised(recorded, NEW_YORK, rules, now));
    const labels = kept.map((ms) => wall(ms, NEW_YORK));
    // DST began on 2026-03-08, so 7 × 24 h before now is 17:00 on 2026-03-03: its 18:00
    // point is still young. 1 + 7 days × 4 = 29 recent points, plus 10 older ones.
    expect(labels).toHaveLength(39);
    expect(labels.slice(0, 11)).toEqual([
      '2025-01-01 00:00',
      '2025-10-01 00:00',
      '2025-11-01 00:00',
      '2025-12-01 00:00',
      '2026-01-01 00:00',
      '2026-02-01 00:00',
      '2026-02-16 00:00',
      '2026-02-23 00:00',
      '2026-03-01 00:00',
      '2026-03-02 00:00',
      '2026-03-03 18:00',
    ]);
  });
});
