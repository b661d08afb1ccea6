/**
 * GFS retention in the style of Azure Backup: how long each recovery point is kept. Pure — no
 * clock, no I/O — so the control plane, the CLI and tests reach the same answers. The rule for
 * points deleted before their period ended is in docs/policies.md ("Retention").
 */
import { HoldfastError } from '../core/index.js';
import { checkTimeZone, parseRetentionRules, type RetentionRules } from './policy.js';

/** A recovery point as retention sees it: an id and the time it was taken (epoch ms). */
export interface RetentionPoint {
  readonly id: string;
  readonly time: number;
}

/** A point with the expiry (epoch ms) stored when it was recorded, when it has one. */
export interface StoredRetentionPoint extends RetentionPoint {
  readonly expiry?: number;
}

const DAY_MS = 86_400_000;

/**
 * Each point's expiry (epoch ms). Every point is kept `daily` × 24 h. The first point of each
 * ISO week (Monday to Sunday in `timezone`) is kept `weekly` weeks, the first of each calendar
 * month `monthly` months and the first of each calendar year `yearly` years, each counted on
 * the calendar: the same weekday or day of month (clamped to the month's end) at the same
 * wall-clock time. A point's expiry is the latest that any rule selecting it gives.
 *
 * "First" is judged among all `points` (ties on time broken by id), so adding newer points
 * never changes an older point's expiry — but removing a period's first point would promote
 * the next one. Callers therefore store a point's expiry when it is recorded
 * ({@link expiryWhenRecorded}) instead of recomputing it from the points that survive.
 */
export function planExpiry(
  points: ReadonlyArray<RetentionPoint>,
  rules: RetentionRules,
  timezone: string,
): Map<string, number> {
  const { daily, weekly, monthly, yearly } = parseRetentionRules(rules);
  const zone = zoneClock(timezone);
  const firsts = { week: new Set<number>(), month: new Set<number>(), year: new Set<number>() };
  const plan = new Map<string, number>();
  for (const point of [...points].sort(byTimeThenId)) {
    if (!Number.isFinite(point.time)) {
      throw new HoldfastError('INTERNAL', `Recovery point ${point.id} has no valid time.`);
    }
    if (plan.has(point.id)) {
      throw new HoldfastError('INTERNAL', `Recovery point ${point.id} is listed twice.`);
    }
    const wall = zone.wallOf(point.time);
    const date = new Date(wall);
    let expiry = point.time + daily * DAY_MS;
    if (weekly !== undefined && isFirst(firsts.week, mondayOf(wall))) {
      expiry = Math.max(expiry, zone.epochOf(wall + weekly * 7 * DAY_MS));
    }
    if (monthly !== undefined && isFirst(firsts.month, monthIndex(date))) {
      expiry = Math.max(expiry, zone.epochOf(addMonths(date, monthly)));
    }
    if (yearly !== undefined && isFirst(firsts.year, date.getUTCFullYear())) {
      expiry = Math.max(expiry, zone.epochOf(addMonths(date, yearly * 12)));
    }
    plan.set(point.id, expiry);
  }
  return plan;
}

/**
 * The expiry to store for a point recorded at `time`, given the time of the item's previously
 * recorded point — even if that point has been deleted since — or undefined for its first.
 * Points are recorded in time order, so the previous point alone tells whether this one opens
 * a new week, month or year; the result equals {@link planExpiry} over the item's whole
 * history, and no deletion, by retention or by hand, can promote a later point. A point older
 * than the previous one (a late import) may count as the first of its period when it is not;
 * that keeps it longer, never shorter.
 */
export function expiryWhenRecorded(
  time: number,
  previousTime: number | undefined,
  rules: RetentionRules,
  timezone: string,
): number {
  const recorded = { id: 'recorded', time };
  const history = previousTime === undefined ? [] : [{ id: 'previous', time: previousTime }];
  const expiry = planExpiry([...history, recorded], rules, timezone).get(recorded.id);
  if (expiry === undefined) throw new HoldfastError('INTERNAL', 'The recorded point has no plan.');
  return expiry;
}

/**
 * Ids of the points whose expiry is at or before `nowMs`, oldest first. A point's stored
 * `expiry` is used when it has one; points without one get {@link planExpiry} over all
 * `points`. With `keepNewest`, the newest point is never returned: the control plane never
 * expires the newest point of a protected item, whatever the rules say.
 */
export function expiredPoints(
  points: ReadonlyArray<StoredRetentionPoint>,
  rules: RetentionRules,
  timezone: string,
  nowMs: number,
  options: { readonly keepNewest: boolean },
): string[] {
  const planned = points.some((point) => point.expiry === undefined)
    ? planExpiry(points, rules, timezone)
    : new Map<string, number>();
  const sorted = [...points].sort(byTimeThenId);
  const newest = options.keepNewest ? sorted.at(-1) : undefined;
  return sorted
    .filter(
      (point) => point !== newest && (point.expiry ?? planned.get(point.id) ?? Infinity) <= nowMs,
    )
    .map((point) => point.id);
}

function byTimeThenId(a: RetentionPoint, b: RetentionPoint): number {
  if (a.time !== b.time) return a.time - b.time;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** Records `key` and says whether it was new. */
function isFirst(seen: Set<number>, key: number): boolean {
  if (seen.has(key)) return false;
  seen.add(key);
  return true;
}

// Wall-clock times are written as "local milliseconds": the epoch milliseconds the same
// calendar fields would have in UTC. Calendar arithmetic on them is plain UTC arithmetic.

/** The day number (days since 1970-01-01) of the Monday starting the ISO week of `wall`. */
function mondayOf(wall: number): number {
  const day = Math.floor(wall / DAY_MS);
  // 1970-01-01 was a Thursday, three days after a Monday.
  return day - ((((day + 3) % 7) + 7) % 7);
}

function monthIndex(date: Date): number {
  return date.getUTCFullYear() * 12 + date.getUTCMonth();
}

/** `months` calendar months after `date`, on the same day clamped to the month's end. */
function addMonths(date: Date, months: number): number {
  const target = monthIndex(date) + months;
  const year = Math.floor(target / 12);
  const month = target - year * 12;
  const lastDay = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  return Date.UTC(
    year,
    month,
    Math.min(date.getUTCDate(), lastDay),
    date.getUTCHours(),
    date.getUTCMinutes(),
    date.getUTCSeconds(),
    date.getUTCMilliseconds(),
  );
}

interface ZoneClock {
  /** The wall-clock time (local milliseconds) at instant `ms`. */
  wallOf(ms: number): number;
  /**
   * The instant showing wall-clock time `wall`. Of a time that occurs twice it is the later
   * occurrence; a time skipped by a DST change moves forward by the gap (02:30 → 03:30).
   * Both err towards keeping a point a little longer, never shorter.
   */
  epochOf(wall: number): number;
}

const formats = new Map<string, Intl.DateTimeFormat>();
// What the en-US format below prints: `1/31/2024, 02:30:00`.
const WALL_TEXT = /^(\d{1,2})\/(\d{1,2})\/(\d{4}), (\d{2}):(\d{2}):(\d{2})$/;

function zoneClock(timezone: string): ZoneClock {
  let format = formats.get(timezone);
  if (format === undefined) {
    checkTimeZone(timezone);
    format = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formats.set(timezone, format);
  }
  const fields = format;
  const wallOf = (ms: number): number => {
    // format() and a pattern are several times faster than formatToParts(), and retention
    // runs this for every point of every item; parts remain the fallback for odd years.
    const match = WALL_TEXT.exec(fields.format(ms));
    const [month, day, year, hour, minute, second] =
      match === null ? partsOf(fields, ms) : match.slice(1).map(Number);
    // Zone offsets are whole seconds, so the milliseconds are the same in every zone.
    const millis = ((ms % 1000) + 1000) % 1000;
    return Date.UTC(year ?? 0, (month ?? 1) - 1, day, hour, minute, second, millis);
  };
  const offsetAt = (ms: number): number => wallOf(ms) - ms;
  const epochOf = (wall: number): number => {
    // Offsets a day either side bracket any one DST change near this time.
    const candidates = [wall - offsetAt(wall - DAY_MS), wall - offsetAt(wall + DAY_MS)];
    const exact = candidates.filter((ms) => wallOf(ms) === wall);
    return Math.max(...(exact.length > 0 ? exact : candidates));
  };
  return { wallOf, epochOf };
}

/** Month, day, year, hour, minute and second of `ms`, in the order en-US prints them. */
function partsOf(format: Intl.DateTimeFormat, ms: number): number[] {
  const part: Partial<Record<Intl.DateTimeFormatPartTypes, number>> = {};
  for (const { type, value } of format.formatToParts(ms)) part[type] = Number(value);
  return [part.month, part.day, part.year, part.hour, part.minute, part.second].map(
    (value) => value ?? 0,
  );
}
