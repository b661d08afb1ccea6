import { describe, expect, it } from 'vitest';
import { isHoldfastError } from '../core/index.js';
import {
  parsePolicySpec,
  parseRetentionRules,
  policyTier,
  type PolicySpecInput,
} from './policy.js';

const valid = {
  schedule: { kind: 'daily', times: ['02:00', '14:30'] },
  timezone: 'Europe/Berlin',
  snapshotDays: 2,
  retention: { daily: 30, weekly: 12, monthly: 12, yearly: 5 },
} satisfies PolicySpecInput;

/** The POLICY_INVALID message `run` throws; fails the test when it throws anything else. */
function policyError(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (isHoldfastError(error, 'POLICY_INVALID')) return error.message;
    throw error;
  }
  throw new Error('expected POLICY_INVALID, nothing was thrown');
}

function withField(path: string[], value: unknown): unknown {
  const copy = structuredClone(valid) as Record<string, unknown>;
  let target = copy;
  for (const key of path.slice(0, -1)) target = target[key] as Record<string, unknown>;
  target[path.at(-1) ?? ''] = value;
  return copy;
}

describe('parsePolicySpec', () => {
  it('accepts each schedule kind and fills in the defaults', () => {
    expect(parsePolicySpec(valid)).toEqual(valid);
    const { timezone: _, ...withoutZone } = valid;
    expect(parsePolicySpec(withoutZone).timezone).toBe('UTC');
    expect(parsePolicySpec(withField(['schedule'], { kind: 'hourly', everyHours: 4 }))).toEqual({
      ...valid,
      schedule: { kind: 'hourly', everyHours: 4, start: '00:00', durationHours: 24 },
    });
    const weekly = { kind: 'weekly', days: ['mon', 'thu'], times: ['22:00'] };
    expect(parsePolicySpec(withField(['schedule'], weekly)).schedule).toEqual(weekly);
    const cron = { kind: 'cron', expression: '0 */6 * * *' };
    expect(parsePolicySpec(withField(['schedule'], cron)).schedule).toEqual(cron);
    const minimal = { ...valid, retention: { daily: 1 } };
    expect(parsePolicySpec(minimal).retention).toEqual({ daily: 1 });
  });

  it('names the field, the allowed range and the value it got', () => {
    expect(policyError(() => parsePolicySpec(withField(['retention', 'daily'], 0)))).toBe(
      'retention.daily: must be an integer from 1 to 9999 (got 0)',
    );
    expect(policyError(() => parsePolicySpec(withField(['snapshotDays'], 31)))).toBe(
      'snapshotDays: must be an integer from 1 to 30 (got 31)',
    );
    expect(
      policyError(() => parsePolicySpec(withField(['schedule', 'times'], ['02:00', '24:00']))),
    ).toBe('schedule.times[1]: must be a time HH:MM from 00:00 to 23:59 (got "24:00")');
  });

  const invalid: Array<[string, string[], unknown, string]> = [
    [
      'daily fraction',
      ['retention', 'daily'],
      1.5,
      'retention.daily: must be an integer from 1 to 9999',
    ],
    [
      'daily as text',
      ['retention', 'daily'],
      '30',
      'retention.daily: must be an integer from 1 to 9999 (got "30")',
    ],
    [
      'daily missing',
      ['retention', 'daily'],
      undefined,
      'retention.daily: must be an integer from 1 to 9999 (missing)',
    ],
    [
      'weekly too long',
      ['retention', 'weekly'],
      5164,
      'retention.weekly: must be an integer from 1 to 5163 (got 5164)',
    ],
    [
      'monthly zero',
      ['retention', 'monthly'],
      0,
      'retention.monthly: must be an integer from 1 to 1188 (got 0)',
    ],
    [
      'yearly too long',
      ['retention', 'yearly'],
      100,
      'retention.yearly: must be an integer from 1 to 99 (got 100)',
    ],
    [
      'yearly infinite',
      ['retention', 'yearly'],
      Infinity,
      'retention.yearly: must be an integer from 1 to 99',
    ],
    [
      'unknown rule',
      ['retention', 'hourly'],
      3,
      'retention: unknown field "hourly"; allowed: daily, weekly, monthly, yearly',
    ],
    ['no retention', ['retention'], null, 'retention: must be an object (got null)'],
    [
      'snapshot days zero',
      ['snapshotDays'],
      0,
      'snapshotDays: must be an integer from 1 to 30 (got 0)',
    ],
    ['unknown zone', ['timezone'], 'Mars/Olympus', 'timezone: must be an IANA time zone name'],
    ['offset as zone', ['timezone'], '+01:00', 'timezone: must be an IANA time zone name'],
    [
      'unknown kind',
      ['schedule', 'kind'],
      'monthly',
      'schedule.kind: must be one of daily, weekly, hourly, cron (got "monthly")',
    ],
    [
      'schedule not an object',
      ['schedule'],
      'daily 02:00',
      'schedule: must be an object with a kind',
    ],
    [
      'time without zero',
      ['schedule', 'times'],
      ['2:00'],
      'schedule.times[0]: must be a time HH:MM',
    ],
    [
      'no times',
      ['schedule', 'times'],
      [],
      'schedule.times: must be a list of 1 to 24 times HH:MM (got [])',
    ],
    [
      'too many times',
      ['schedule', 'times'],
      Array.from({ length: 25 }, (_, h) => `${String(h % 24).padStart(2, '0')}:05`),
      'schedule.times: must be a list of 1 to 24 times',
    ],
    [
      'a time twice',
      ['schedule', 'times'],
      ['02:00', '02:00'],
      'schedule.times: must list each time once',
    ],
    [
      'unknown field in schedule',
      ['schedule', 'every'],
      4,
      'schedule: unknown field "every"; allowed: kind, times',
    ],
    [
      'unknown top-level field',
      ['retain'],
      4,
      'policy: unknown field "retain"; allowed: schedule, timezone, snapshotDays, retention',
    ],
  ];
  it.each(invalid)('rejects %s', (_, path, value, message) => {
    expect(policyError(() => parsePolicySpec(withField(path, value)))).toContain(message);
  });

  const schedules: Array<[string, unknown, string]> = [
    [
      'a day name in full',
      { kind: 'weekly', days: ['monday'], times: ['22:00'] },
      'schedule.days[0]: must be one of mon, tue, wed, thu, fri, sat, sun (got "monday")',
    ],
    [
      'a day twice',
      { kind: 'weekly', days: ['mon', 'mon'], times: ['22:00'] },
      'schedule.days: must list each day once',
    ],
    [
      'no days',
      { kind: 'weekly', days: [], times: ['22:00'] },
      'schedule.days: must be a list of 1 to 7 days',
    ],
    [
      'every 0 hours',
      { kind: 'hourly', everyHours: 0 },
      'schedule.everyHours: must be an integer from 1 to 24 (got 0)',
    ],
    [
      'every 25 hours',
      { kind: 'hourly', everyHours: 25 },
      'schedule.everyHours: must be an integer from 1 to 24 (got 25)',
    ],
    [
      'a 25-hour window',
      { kind: 'hourly', everyHours: 4, durationHours: 25 },
      'schedule.durationHours: must be an integer from 1 to 24 (got 25)',
    ],
    [
      'a window start',
      { kind: 'hourly', everyHours: 4, start: '8:00' },
      'schedule.start: must be a time HH:MM',
    ],
    [
      'a 4-field cron',
      { kind: 'cron', expression: '0 2 * *' },
      'schedule.expression: must be a cron expression of 5 fields (minute hour day-of-month month day-of-week), not 4',
    ],
    ['a 6-field cron', { kind: 'cron', expression: '0 0 2 * * *' }, 'not 6'],
    [
      'a cron minute 61',
      { kind: 'cron', expression: '61 2 * * *' },
      'schedule.expression: is not a valid cron expression',
    ],
    [
      'a cron on 31 February',
      { kind: 'cron', expression: '0 0 31 2 *' },
      'schedule.expression: never matches any date (got "0 0 31 2 *")',
    ],
    [
      'a cron with times',
      { kind: 'cron', expression: '0 2 * * *', times: ['02:00'] },
      'schedule: unknown field "times"; allowed: kind, expression',
    ],
  ];
  it.each(schedules)('rejects a schedule with %s', (_, schedule, message) => {
    expect(policyError(() => parsePolicySpec(withField(['schedule'], schedule)))).toContain(
      message,
    );
  });

  it('reports every problem at once, not only the first', () => {
    const message = policyError(() =>
      parsePolicySpec({ ...valid, snapshotDays: 0, retention: { daily: 0, yearly: 0 } }),
    );
    expect(message).toContain('snapshotDays:');
    expect(message).toContain('retention.daily:');
    expect(message).toContain('retention.yearly:');
  });

  it('rejects what is not an object', () => {
    for (const input of [null, 'policy', 42, []]) {
      expect(policyError(() => parsePolicySpec(input))).toMatch(/^policy: must be an object/);
    }
  });

  it('validates retention rules alone for callers that hold only those', () => {
    expect(parseRetentionRules({ daily: 7, yearly: 2 })).toEqual({ daily: 7, yearly: 2 });
    expect(policyError(() => parseRetentionRules({ daily: 10_000 }))).toBe(
      'retention.daily: must be an integer from 1 to 9999 (got 10000)',
    );
  });
});

describe('policyTier', () => {
  it('is standard up to 5 snapshot days and enhanced beyond', () => {
    expect([1, 2, 5, 6, 30].map((snapshotDays) => policyTier({ snapshotDays }))).toEqual([
      'standard',
      'standard',
      'standard',
      'enhanced',
      'enhanced',
    ]);
  });
});
