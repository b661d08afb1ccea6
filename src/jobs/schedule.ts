/**
 * When a schedule runs: pure functions of the schedule, its time zone and a given instant.
 * There is no clock here; the scheduler passes the time in (STYLE.md principle 5).
 */
import { Cron } from 'croner';
import { HoldfastError } from '../core/index.js';
import {
  CRON_OPTIONS,
  WEEKDAYS,
  checkTimeZone,
  type HourlySchedule,
  type ScheduleSpec,
  type Weekday,
} from './policy.js';
import { formatScheduleText } from './schedule-text.js';

const MINUTES_PER_DAY = 24 * 60;

/**
 * The 5-field cron patterns whose matches together are the schedule's runs. Daily, weekly and
 * hourly schedules need one pattern per distinct minute: `02:00,14:30` is `0 2 * * *` and
 * `30 14 * * *`, because `0,30 2,14 * * *` would also run at 02:30 and 14:00.
 */
export function cronPatterns(schedule: ScheduleSpec): string[] {
  switch (schedule.kind) {
    case 'daily':
      return patternsByMinute(schedule.times.map(minutesOf), '*');
    case 'weekly': {
      const days = schedule.days.map(cronWeekday).sort((a, b) => a - b);
      return patternsByMinute(schedule.times.map(minutesOf), days.join(','));
    }
    case 'hourly':
      return patternsByMinute(hourlyTimes(schedule), '*');
    case 'cron':
      return [schedule.expression];
  }
}

/**
 * The first run of `schedule` strictly after `afterMs` (epoch milliseconds), in `timezone`.
 * Times are wall-clock times in the zone: a time that a DST change skips runs at the first
 * minute after the gap (02:30 on a spring-forward night runs at 03:00 in Europe/Berlin), and a
 * time that occurs twice runs once, at its first occurrence. Cron expressions with `*` or a
 * step in the minute or hour field follow elapsed time instead, as Vixie cron does: they skip
 * the gap and run in both occurrences of a repeated hour. Throws POLICY_INVALID when the time
 * zone is unknown or the schedule never runs again.
 */
export function nextRunAfter(schedule: ScheduleSpec, timezone: string, afterMs: number): number {
  if (!Number.isFinite(afterMs)) {
    throw new HoldfastError('INTERNAL', `nextRunAfter needs a finite time, got ${afterMs}.`);
  }
  const after = new Date(afterMs);
  let next = Infinity;
  for (const cron of compile(schedule, timezone)) {
    const run = cron.nextRun(after)?.getTime();
    if (run !== undefined && run < next) next = run;
  }
  if (next === Infinity) {
    throw new HoldfastError(
      'POLICY_INVALID',
      `Schedule "${formatScheduleText(schedule)}" has no run after ${after.toISOString()}.`,
    );
  }
  return next;
}

/**
 * Every run of `schedule` in `[fromMs, toMs)`, oldest first. Meant for bounded ranges (tests,
 * a calendar view); the result grows with the number of runs in the range.
 */
export function runsBetween(
  schedule: ScheduleSpec,
  timezone: string,
  fromMs: number,
  toMs: number,
): number[] {
  const runs: number[] = [];
  // Runs fall on whole minutes, so "after fromMs - 1" includes a run exactly at fromMs.
  let run = nextRunAfter(schedule, timezone, fromMs - 1);
  while (run < toMs) {
    runs.push(run);
    run = nextRunAfter(schedule, timezone, run);
  }
  return runs;
}

// Compiling costs more than evaluating; a scheduler asks about the same policy object again
// and again, so keep the compiled patterns for as long as the object lives.
const compiled = new WeakMap<ScheduleSpec, Map<string, readonly Cron[]>>();

function compile(schedule: ScheduleSpec, timezone: string): readonly Cron[] {
  const byZone = compiled.get(schedule) ?? new Map<string, readonly Cron[]>();
  compiled.set(schedule, byZone);
  const cached = byZone.get(timezone);
  if (cached !== undefined) return cached;
  checkTimeZone(timezone);
  const crons = cronPatterns(schedule).map((pattern) => {
    try {
      return new Cron(pattern, { ...CRON_OPTIONS, timezone });
    } catch (error) {
      throw new HoldfastError(
        'POLICY_INVALID',
        `Schedule "${formatScheduleText(schedule)}" cannot be evaluated: ${String(error)}`,
        { cause: error },
      );
    }
  });
  byZone.set(timezone, crons);
  return crons;
}

/** The minutes after midnight at which an hourly schedule's daily window has runs. */
function hourlyTimes(schedule: HourlySchedule): number[] {
  const start = minutesOf(schedule.start);
  const times = new Set<number>();
  // The window includes its end (every 2h from 22:00 for 6h runs at 04:00 too) and may wrap
  // past midnight; each day opens the same window, so the set of times is the same every day.
  for (let offset = 0; offset <= schedule.durationHours; offset += schedule.everyHours) {
    times.add((start + offset * 60) % MINUTES_PER_DAY);
  }
  return [...times].sort((a, b) => a - b);
}

/** Times of day (minutes after midnight) as patterns, one per distinct minute past the hour. */
function patternsByMinute(times: readonly number[], daysOfWeek: string): string[] {
  const hoursByMinute = new Map<number, number[]>();
  for (const minutes of times) {
    const minute = minutes % 60;
    const hours = hoursByMinute.get(minute) ?? [];
    hours.push(Math.floor(minutes / 60));
    hoursByMinute.set(minute, hours);
  }
  return [...hoursByMinute]
    .sort(([a], [b]) => a - b)
    .map(([minute, hours]) => {
      const sorted = [...new Set(hours)].sort((a, b) => a - b);
      return `${minute} ${sorted.join(',')} * * ${daysOfWeek}`;
    });
}

function minutesOf(time: string): number {
  const [hours, minutes] = time.split(':').map(Number);
  return (hours ?? 0) * 60 + (minutes ?? 0);
}

/** Cron numbers its days from Sunday = 0; WEEKDAYS starts on Monday. */
function cronWeekday(day: Weekday): number {
  return (WEEKDAYS.indexOf(day) + 1) % 7;
}
