import { describe, expect, it } from 'vitest';
import { isHoldfastError } from '../core/index.js';
import type { ScheduleSpec } from './policy.js';
import { cronPatterns, nextRunAfter, runsBetween } from './schedule.js';
import { parseScheduleText } from './schedule-text.js';

const DAY = 86_400_000;

/** `ms` as wall-clock time in `timeZone` with its UTC offset: `2024-03-31 03:00 +02:00`. */
function local(ms: number, timeZone: string): string {
  const text = new Date(ms).toLocaleString('sv-SE', { timeZone, hourCycle: 'h23' });
  const wall = Date.parse(`${text.replace(' ', 'T')}Z`);
  const offset = Math.round((wall - ms) / 60_000);
  const sign = offset < 0 ? '-' : '+';
  const hh = String(Math.floor(Math.abs(offset) / 60)).padStart(2, '0');
  const mm = String(Math.abs(offset) % 60).padStart(2, '0');
  return `${text.slice(0, 16)} ${sign}${hh}:${mm}`;
}

/** The runs of a schedule text in `[from, to)`, as {@link local} times. */
function runs(text: string, timeZone: string, from: string, to: string): string[] {
  return runsBetween(parseScheduleText(text), timeZone, Date.parse(from), Date.parse(to)).map(
    (ms) => local(ms, timeZone),
  );
}

const BERLIN = 'Europe/Berlin';
const NEW_YORK = 'America/New_York';
// Berlin's DST days of 2024, midnight to midnight: 23 hours in March, 25 in October.
const SPRING_DAY = '2024-03-31T00:00:00+01:00';
const SPRING_NEXT = '2024-04-01T00:00:00+02:00';
const AUTUMN_DAY = '2024-10-27T00:00:00+02:00';
const AUTUMN_NEXT = '2024-10-28T00:00:00+01:00';

describe('nextRunAfter', () => {
  const daily: ScheduleSpec = { kind: 'daily', times: ['02:00'] };

  it('returns the first run strictly after the given instant', () => {
    const run = Date.parse('2024-01-11T02:00:00+01:00');
    expect(nextRunAfter(daily, BERLIN, Date.parse('2024-01-10T12:00:00Z'))).toBe(run);
    expect(nextRunAfter(daily, BERLIN, run - 1)).toBe(run);
    expect(nextRunAfter(daily, BERLIN, run)).toBe(run + DAY);
    expect(nextRunAfter(daily, BERLIN, run + 500)).toBe(run + DAY);
  });

  it('reads times in the policy time zone', () => {
    const after = Date.parse('2024-07-01T12:00:00Z');
    expect(local(nextRunAfter(daily, 'UTC', after), 'UTC')).toBe('2024-07-02 02:00 +00:00');
    expect(local(nextRunAfter(daily, BERLIN, after), BERLIN)).toBe('2024-07-02 02:00 +02:00');
    expect(local(nextRunAfter(daily, NEW_YORK, after), NEW_YORK)).toBe('2024-07-02 02:00 -04:00');
  });

  it('runs a time skipped by spring-forward right after the gap (Berlin, last Sunday of March)', () => {
    expect(runs('daily 02:30', BERLIN, '2024-03-30T00:00:00Z', '2024-04-02T00:00:00Z')).toEqual([
      '2024-03-30 02:30 +01:00',
      '2024-03-31 03:00 +02:00',
      '2024-04-01 02:30 +02:00',
    ]);
  });

  it('runs a time repeated by fall-back once (Berlin, last Sunday of October)', () => {
    expect(runs('daily 02:30', BERLIN, '2024-10-26T00:00:00Z', '2024-10-29T00:00:00Z')).toEqual([
      '2024-10-26 02:30 +02:00',
      '2024-10-27 02:30 +02:00',
      '2024-10-28 02:30 +01:00',
    ]);
  });

  it('does the same in New York, where the change is at 02:00 local', () => {
    expect(runs('daily 02:30', NEW_YORK, '2024-03-09T12:00:00Z', '2024-03-11T12:00:00Z')).toEqual([
      '2024-03-10 03:00 -04:00',
      '2024-03-11 02:30 -04:00',
    ]);
    expect(runs('daily 01:30', NEW_YORK, '2024-11-02T12:00:00Z', '2024-11-04T12:00:00Z')).toEqual([
      '2024-11-03 01:30 -04:00',
      '2024-11-04 01:30 -05:00',
    ]);
  });

  it('keeps wall-clock slots for hourly windows across DST: one run per slot, 23 or 24 a day', () => {
    const spring = runs('every 1h', BERLIN, SPRING_DAY, SPRING_NEXT);
    expect(spring).toHaveLength(23);
    expect(spring.slice(1, 3)).toEqual(['2024-03-31 01:00 +01:00', '2024-03-31 03:00 +02:00']);
    const autumn = runs('every 1h', BERLIN, AUTUMN_DAY, AUTUMN_NEXT);
    expect(autumn).toHaveLength(24);
    expect(autumn.slice(2, 4)).toEqual(['2024-10-27 02:00 +02:00', '2024-10-27 03:00 +01:00']);
  });

  it('lets cron steps follow elapsed time, as Vixie cron does: both 02:00s in autumn', () => {
    const autumn = runs('0 * * * *', BERLIN, AUTUMN_DAY, AUTUMN_NEXT);
    expect(autumn).toHaveLength(25);
    expect(autumn.slice(2, 5)).toEqual([
      '2024-10-27 02:00 +02:00',
      '2024-10-27 02:00 +01:00',
      '2024-10-27 03:00 +01:00',
    ]);
    expect(runs('0 */6 * * *', BERLIN, AUTUMN_NEXT, '2024-10-29T00:00:00+01:00')).toEqual([
      '2024-10-28 00:00 +01:00',
      '2024-10-28 06:00 +01:00',
      '2024-10-28 12:00 +01:00',
      '2024-10-28 18:00 +01:00',
    ]);
  });

  it('wraps an hourly window past midnight', () => {
    const schedule = parseScheduleText('every 2h from 22:00 for 6h');
    expect(cronPatterns(schedule)).toEqual(['0 0,2,4,22 * * *']);
    expect(
      runs('every 2h from 22:00 for 6h', 'UTC', '2024-01-01T12:00:00Z', '2024-01-02T12:00:00Z'),
    ).toEqual([
      '2024-01-01 22:00 +00:00',
      '2024-01-02 00:00 +00:00',
      '2024-01-02 02:00 +00:00',
      '2024-01-02 04:00 +00:00',
    ]);
  });

  it('restarts an hourly window each day, including the slot at its end', () => {
    const times = (text: string): string[] =>
      runs(text, 'UTC', '2024-01-01T00:00:00Z', '2024-01-02T00:00:00Z').map((run) =>
        run.slice(11, 16),
      );
    expect(times('every 4h from 08:00')).toEqual([
      '00:00',
      '04:00',
      '08:00',
      '12:00',
      '16:00',
      '20:00',
    ]);
    expect(times('every 4h from 08:00 for 12h')).toEqual(['08:00', '12:00', '16:00', '20:00']);
    expect(times('every 5h')).toEqual(['00:00', '05:00', '10:00', '15:00', '20:00']);
    expect(times('every 24h from 06:15')).toEqual(['06:15']);
    expect(times('every 4h from 09:45 for 8h')).toEqual(['09:45', '13:45', '17:45']);
  });

  it('runs each listed time and no mix of their hours and minutes', () => {
    const schedule = parseScheduleText('daily 02:00,14:30');
    expect(cronPatterns(schedule)).toEqual(['0 2 * * *', '30 14 * * *']);
    expect(
      runs('daily 14:30,02:00', BERLIN, '2024-01-01T00:00:00Z', '2024-01-03T00:00:00Z'),
    ).toEqual([
      '2024-01-01 02:00 +01:00',
      '2024-01-01 14:30 +01:00',
      '2024-01-02 02:00 +01:00',
      '2024-01-02 14:30 +01:00',
    ]);
  });

  it('runs weekly schedules on the named days only, Sunday included', () => {
    // 2024-01-01 was a Monday.
    expect(
      runs('weekly mon,thu 22:00', BERLIN, '2024-01-01T00:00:00Z', '2024-01-15T00:00:00Z'),
    ).toEqual([
      '2024-01-01 22:00 +01:00',
      '2024-01-04 22:00 +01:00',
      '2024-01-08 22:00 +01:00',
      '2024-01-11 22:00 +01:00',
    ]);
    expect(cronPatterns(parseScheduleText('weekly sun,sat 06:00,06:30'))).toEqual([
      '0 6 * * 0,6',
      '30 6 * * 0,6',
    ]);
    expect(
      runs('weekly sun 06:00', NEW_YORK, '2024-01-01T00:00:00Z', '2024-01-15T00:00:00Z'),
    ).toEqual(['2024-01-07 06:00 -05:00', '2024-01-14 06:00 -05:00']);
  });

  it('evaluates cron expressions in the zone', () => {
    expect(runs('30 1 * * 1-5', BERLIN, '2024-01-05T00:00:00Z', '2024-01-09T00:00:00Z')).toEqual([
      '2024-01-05 01:30 +01:00',
      '2024-01-08 01:30 +01:00',
    ]);
    expect(runs('0 0 29 2 *', 'UTC', '2024-01-01T00:00:00Z', '2029-01-01T00:00:00Z')).toEqual([
      '2024-02-29 00:00 +00:00',
      '2028-02-29 00:00 +00:00',
    ]);
  });

  it('includes a run at the start of a range and excludes one at its end', () => {
    const run = Date.parse('2024-01-11T02:00:00+01:00');
    expect(runsBetween(daily, BERLIN, run, run + DAY)).toEqual([run]);
    expect(runsBetween(daily, BERLIN, run + 1, run + DAY + 1)).toEqual([run + DAY]);
    expect(runsBetween(daily, BERLIN, run, run)).toEqual([]);
  });

  it('refuses an unknown time zone and a schedule that never runs', () => {
    const codeOf = (run: () => unknown): string | undefined => {
      try {
        run();
      } catch (error) {
        return isHoldfastError(error) ? `${error.code}: ${error.message}` : String(error);
      }
      return undefined;
    };
    expect(codeOf(() => nextRunAfter(daily, 'Mars/Olympus', 0))).toMatch(
      /^POLICY_INVALID: timezone:/,
    );
    const never: ScheduleSpec = { kind: 'cron', expression: '0 0 31 2 *' };
    expect(codeOf(() => nextRunAfter(never, 'UTC', 0))).toMatch(
      /^POLICY_INVALID: Schedule "0 0 31 2 \*" has no run/,
    );
  });
});
