/**
 * Retention: which recovery points a forget policy keeps. Pure — no I/O, no clock — so the
 * CLI can print the same decision it would act on, and tests can check it exhaustively.
 */
import { HoldfastError } from '../core/index.js';
import type { Point } from './point.js';

/**
 * Which points to keep, in the style of restic's `forget`. Every rule keeps points on its own;
 * a point is removed only when no rule keeps it. Counts are non-negative integers or
 * `Infinity`; zero means "rule not set".
 */
export interface ForgetPolicy {
  /** Keep the N newest points. */
  readonly keepLast?: number;
  /** Keep the newest point of each of the N most recent hours that have points. */
  readonly keepHourly?: number;
  /** Likewise per calendar day. */
  readonly keepDaily?: number;
  /** Likewise per ISO-8601 week (Monday to Sunday). */
  readonly keepWeekly?: number;
  /** Likewise per calendar month. */
  readonly keepMonthly?: number;
  /** Likewise per calendar year. */
  readonly keepYearly?: number;
  /** Keep points taken less than this many milliseconds before the group's newest point. */
  readonly keepWithin?: number;
  /** Keep points carrying any of these tags. */
  readonly keepTags?: readonly string[];
}

/** A point the policy keeps, with every rule that keeps it (`daily`, `tag:db`, …). */
export interface KeptPoint {
  readonly point: Point;
  readonly reasons: string[];
}

/** One group of points (same host and paths) and the decision for it. */
export interface ForgetGroup {
  readonly host: string;
  /** Sorted. */
  readonly paths: readonly string[];
  /** Newest first. */
  readonly keep: KeptPoint[];
  /** Newest first. */
  readonly remove: Point[];
}

/** The decision for all points: `keep` and `remove` partition the input. */
export interface ForgetResult {
  readonly keep: KeptPoint[];
  readonly remove: Point[];
  readonly groups: ForgetGroup[];
}

const BUCKET_RULES = [
  ['keepHourly', 'hourly'],
  ['keepDaily', 'daily'],
  ['keepWeekly', 'weekly'],
  ['keepMonthly', 'monthly'],
  ['keepYearly', 'yearly'],
] as const;
type BucketKind = (typeof BUCKET_RULES)[number][1];

/**
 * Decides which points to keep. Points are grouped by host and sorted paths and each group is
 * judged alone, newest first. Calendar buckets are taken in `timeZone` (IANA name, default
 * UTC). Two guarantees beyond restic's: a policy without any rule is refused (USAGE_INVALID)
 * rather than removing everything, and the newest point of every group is always kept, so a
 * policy such as tags-only can never wipe out a source's latest backup. A point whose time
 * cannot be parsed is kept: it cannot be judged, and removal cannot be undone.
 */
export function selectForget(
  points: readonly Point[],
  policy: ForgetPolicy,
  options: { timeZone?: string } = {},
): ForgetResult {
  validatePolicy(policy);
  const calendar = calendarOf(options.timeZone ?? 'UTC');
  const grouped = new Map<string, Point[]>();
  for (const point of points) {
    const key = JSON.stringify([point.host, [...point.paths].sort()]);
    const list = grouped.get(key);
    if (list) list.push(point);
    else grouped.set(key, [point]);
  }
  const groups = [...grouped.values()].map((group) => judgeGroup(group, policy, calendar));
  return {
    keep: groups.flatMap((g) => g.keep),
    remove: groups.flatMap((g) => g.remove),
    groups,
  };
}

function judgeGroup(
  points: readonly Point[],
  policy: ForgetPolicy,
  calendar: (ms: number) => Record<BucketKind, string>,
): ForgetGroup {
  const timed = points.map((point) => ({ point, ms: Date.parse(point.time) }));
  // Unparsable times sort last so they never count as the group's newest; ties break on id so
  // the decision does not depend on input order.
  const order = (ms: number): number => (Number.isNaN(ms) ? -Infinity : ms);
  timed.sort((a, b) => {
    if (order(a.ms) !== order(b.ms)) return order(b.ms) > order(a.ms) ? 1 : -1;
    return a.point.id < b.point.id ? 1 : a.point.id > b.point.id ? -1 : 0;
  });
  const newest = timed[0]?.ms ?? NaN;
  let lastLeft = policy.keepLast ?? 0;
  const buckets = BUCKET_RULES.map(([field, kind]) => ({
    kind,
    left: policy[field] ?? 0,
    last: undefined as string | undefined,
  }));
  const tags = new Set(policy.keepTags ?? []);
  const keep: KeptPoint[] = [];
  const remove: Point[] = [];
  timed.forEach(({ point, ms }, index) => {
    const reasons: string[] = [];
    if (Number.isNaN(ms)) reasons.push('time unreadable');
    for (const tag of point.tags) if (tags.has(tag)) reasons.push(`tag:${tag}`);
    if (lastLeft > 0) {
      lastLeft -= 1;
      reasons.push('last');
    }
    if (!Number.isNaN(ms)) {
      if (policy.keepWithin !== undefined && newest - ms < policy.keepWithin)
        reasons.push('within');
      const keys = calendar(ms);
      for (const bucket of buckets) {
        // Points arrive newest first, so the first point seen in a bucket is its newest.
        if (bucket.left <= 0 || keys[bucket.kind] === bucket.last) continue;
        bucket.last = keys[bucket.kind];
        bucket.left -= 1;
        reasons.push(bucket.kind);
      }
    }
    if (index === 0 && reasons.length === 0) reasons.push('newest');
    if (reasons.length > 0) keep.push({ point, reasons });
    else remove.push(point);
  });
  const first = timed[0]?.point;
  return { host: first?.host ?? '', paths: [...(first?.paths ?? [])].sort(), keep, remove };
}

function validatePolicy(policy: ForgetPolicy): void {
  const counts: Array<[string, number | undefined]> = [
    ['keepLast', policy.keepLast],
    ...BUCKET_RULES.map(([field]): [string, number | undefined] => [field, policy[field]]),
  ];
  for (const [name, value] of counts) {
    if (value !== undefined && !(value === Infinity || (Number.isSafeInteger(value) && value >= 0)))
      throw new HoldfastError('USAGE_INVALID', `${name} must be a whole number of 0 or more.`);
  }
  const within = policy.keepWithin;
  if (within !== undefined && !(within >= 0))
    throw new HoldfastError('USAGE_INVALID', 'keepWithin must be a duration of 0 or more.');
  const hasRule =
    counts.some(([, value]) => (value ?? 0) > 0) ||
    (within ?? 0) > 0 ||
    (policy.keepTags?.length ?? 0) > 0;
  if (!hasRule) {
    throw new HoldfastError(
      'USAGE_INVALID',
      'The forget policy keeps nothing: set at least one keep rule (for example --keep-last 1).',
    );
  }
}

/** Returns a function giving a time's hour, day, ISO week, month and year keys in `timeZone`. */
function calendarOf(timeZone: string): (ms: number) => Record<BucketKind, string> {
  let format: Intl.DateTimeFormat;
  try {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      hourCycle: 'h23',
    });
  } catch (error) {
    throw new HoldfastError('USAGE_INVALID', `Unknown time zone ${timeZone}; use an IANA name.`, {
      cause: error,
    });
  }
  return (ms) => {
    const part: Record<string, string> = {};
    for (const p of format.formatToParts(ms)) part[p.type] = p.value;
    const year = part['year'] ?? '';
    const month = part['month'] ?? '';
    const day = part['day'] ?? '';
    return {
      hourly: `${year}-${month}-${day}T${part['hour'] ?? ''}`,
      daily: `${year}-${month}-${day}`,
      weekly: isoWeek(Number(year), Number(month), Number(day)),
      monthly: `${year}-${month}`,
      yearly: year,
    };
  };
}

/** ISO-8601 week of a calendar date: the week belongs to the year holding its Thursday. */
function isoWeek(year: number, month: number, day: number): string {
  const date = new Date(Date.UTC(year, month - 1, day));
  const weekday = date.getUTCDay() || 7;
  date.setUTCDate(date.getUTCDate() + 4 - weekday);
  const thursdayYear = date.getUTCFullYear();
  const dayOfYear = (date.getTime() - Date.UTC(thursdayYear, 0, 1)) / 86_400_000;
  return `${thursdayYear}-W${Math.floor(dayOfYear / 7) + 1}`;
}
