import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isHoldfastError } from '../core/index.js';
import { WEEKDAYS, parseScheduleSpec, type ScheduleSpec } from './policy.js';
import { formatScheduleText, parseScheduleText } from './schedule-text.js';

const pad = (n: number): string => String(n).padStart(2, '0');
const time = fc
  .tuple(fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 }))
  .map(([h, m]) => `${pad(h)}:${pad(m)}`);
const times = fc.uniqueArray(time, { minLength: 1, maxLength: 24 });

function cronField(min: number, max: number): fc.Arbitrary<string> {
  const value = fc.integer({ min, max });
  return fc.oneof(
    fc.constant('*'),
    value.map(String),
    fc.integer({ min: 1, max: Math.min(30, max) }).map((step) => `*/${step}`),
    fc.tuple(value, value).map(([a, b]) => `${Math.min(a, b)}-${Math.max(a, b)}`),
    fc.uniqueArray(value, { minLength: 2, maxLength: 4 }).map((list) => list.join(',')),
  );
}

const schedule: fc.Arbitrary<ScheduleSpec> = fc.oneof(
  times.map((list): ScheduleSpec => ({ kind: 'daily', times: list })),
  fc
    .tuple(fc.uniqueArray(fc.constantFrom(...WEEKDAYS), { minLength: 1, maxLength: 7 }), times)
    .map(([days, list]): ScheduleSpec => ({ kind: 'weekly', days, times: list })),
  fc
    .record({
      everyHours: fc.integer({ min: 1, max: 24 }),
      start: time,
      durationHours: fc.integer({ min: 1, max: 24 }),
    })
    .map((fields): ScheduleSpec => ({ kind: 'hourly', ...fields })),
  // Days of the month up to 28 only: "31 in February" alone is rightly refused.
  fc
    .tuple(cronField(0, 59), cronField(0, 23), cronField(1, 28), cronField(1, 12), cronField(0, 6))
    .map((fields): ScheduleSpec => ({ kind: 'cron', expression: fields.join(' ') })),
);

function policyError(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (isHoldfastError(error, 'POLICY_INVALID')) return error.message;
    throw error;
  }
  throw new Error('expected POLICY_INVALID, nothing was thrown');
}

describe('schedule text', () => {
  const examples: Array<[string, ScheduleSpec]> = [
    ['daily 02:00', { kind: 'daily', times: ['02:00'] }],
    ['daily 02:00,14:30', { kind: 'daily', times: ['02:00', '14:30'] }],
    ['weekly mon,thu 22:00', { kind: 'weekly', days: ['mon', 'thu'], times: ['22:00'] }],
    ['weekly sun 01:15,13:45', { kind: 'weekly', days: ['sun'], times: ['01:15', '13:45'] }],
    ['every 4h', { kind: 'hourly', everyHours: 4, start: '00:00', durationHours: 24 }],
    ['every 4h from 08:00', { kind: 'hourly', everyHours: 4, start: '08:00', durationHours: 24 }],
    ['every 2h for 6h', { kind: 'hourly', everyHours: 2, start: '00:00', durationHours: 6 }],
    [
      'every 2h from 22:00 for 6h',
      { kind: 'hourly', everyHours: 2, start: '22:00', durationHours: 6 },
    ],
    ['0 */6 * * *', { kind: 'cron', expression: '0 */6 * * *' }],
    ['30 1 * * 1-5', { kind: 'cron', expression: '30 1 * * 1-5' }],
  ];
  it.each(examples)('reads and prints %s', (text, spec) => {
    expect(parseScheduleText(text)).toEqual(spec);
    expect(formatScheduleText(spec)).toBe(text);
  });

  it('round-trips every valid schedule through its canonical text', () => {
    fc.assert(
      fc.property(schedule, (spec) => {
        expect(parseScheduleSpec(spec)).toEqual(spec);
        const text = formatScheduleText(spec);
        expect(parseScheduleText(text)).toEqual(spec);
        expect(formatScheduleText(parseScheduleText(text))).toBe(text);
      }),
      { seed: 20_240_331, numRuns: 300 },
    );
  });

  it('reads keywords, days and units in any case and with any spacing', () => {
    const loose = fc.tuple(
      schedule.filter((spec) => spec.kind !== 'cron'),
      fc.constantFrom(' ', '  ', '\t', ' \t '),
    );
    fc.assert(
      fc.property(loose, ([spec, space]) => {
        const text = `  ${formatScheduleText(spec).toUpperCase().split(' ').join(space)} `;
        expect(parseScheduleText(text)).toEqual(spec);
      }),
      { seed: 7, numRuns: 200 },
    );
    expect(parseScheduleText(' 0   */6 * *  * ')).toEqual({
      kind: 'cron',
      expression: '0 */6 * * *',
    });
    expect(parseScheduleText('every 4h for 12h from 08:00')).toEqual(
      parseScheduleText('every 4h from 08:00 for 12h'),
    );
  });

  const invalid: Array<[string, string]> = [
    ['', 'the schedule is empty'],
    ['daily', 'a daily schedule is "daily HH:MM[,HH:MM...]"'],
    ['daily 25:00', 'times[0]: must be a time HH:MM from 00:00 to 23:59 (got "25:00")'],
    ['daily 02:00,02:00', 'times: must list each time once'],
    ['daily 02:00 14:30', 'a daily schedule is'],
    ['weekly 22:00', 'a weekly schedule is'],
    ['weekly funday 22:00', 'days[0]: must be one of mon, tue, wed, thu, fri, sat, sun'],
    ['every 4 hours', 'an hourly schedule is "every <N>h [from HH:MM] [for <M>h]"'],
    ['every 4h from', 'an hourly schedule is'],
    ['every 4h from 08:00 from 09:00', 'an hourly schedule is'],
    ['every 4h for 6', 'an hourly schedule is'],
    ['every 0h', 'everyHours: must be an integer from 1 to 24 (got 0)'],
    ['every 4h for 25h', 'durationHours: must be an integer from 1 to 24 (got 25)'],
    ['every 4h from 8:00', 'start: must be a time HH:MM'],
    ['@daily', 'a cron expression has 5 fields'],
    [
      '0 2 * *',
      'a cron expression has 5 fields (minute hour day-of-month month day-of-week), this has 4',
    ],
    ['0 0 2 * * *', 'this has 6'],
    [
      '61 2 * * *',
      'expression: is not a valid cron expression: CronPattern: Invalid value for minute: 61',
    ],
    ['0 0 31 2 *', 'expression: never matches any date'],
  ];
  it.each(invalid)('refuses %j, naming the problem and the accepted forms', (text, problem) => {
    const message = policyError(() => parseScheduleText(text));
    expect(message).toContain(problem);
    expect(message).toContain(`Schedule ${JSON.stringify(text)}`);
    expect(message).toContain('Accepted forms: "daily HH:MM[,HH:MM...]"');
    expect(message).toContain('"every <N>h [from HH:MM] [for <M>h]"');
  });
});
