/**
 * The backup policy specification: when to back up, in which time zone, how long to keep
 * instant-restore snapshots and how long to keep recovery points (GFS). This is the JSON the
 * REST API receives and the catalog stores; the schema is the one definition of its shape.
 */
import { Cron } from 'croner';
import { z } from 'zod';
import { HoldfastError } from '../core/index.js';

/** Days of the week as weekly schedules name them, Monday first (ISO order). */
export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
/** One of {@link WEEKDAYS}. */
export type Weekday = (typeof WEEKDAYS)[number];

/** Policy tiers: `enhanced` keeps instant-restore snapshots longer than `standard` can. */
export const POLICY_TIERS = ['standard', 'enhanced'] as const;
/** One of {@link POLICY_TIERS}. */
export type PolicyTier = (typeof POLICY_TIERS)[number];

/** The most snapshot days a `standard` policy may keep; more makes it `enhanced`. */
export const STANDARD_MAX_SNAPSHOT_DAYS = 5;

/**
 * Options every schedule is evaluated with. Five fields only: a sixth (seconds) field would
 * allow schedules far denser than a backup can run. `no-wildcard` makes lists such as `0 2,14`
 * fixed wall-clock times, so DST treats them like single times (see docs/policies.md).
 */
export const CRON_OPTIONS = { mode: '5-part', fixedTimeRule: 'no-wildcard' } as const;

const TIME_PATTERN = /^(?:[01]\d|2[0-3]):[0-5]\d$/;
const TIME_RULE = 'must be a time HH:MM from 00:00 to 23:59';
const TIME_ZONE_RULE = 'must be an IANA time zone name such as Europe/Berlin or UTC';

function wholeNumber(min: number, max: number) {
  const error = `must be an integer from ${min} to ${max}`;
  return z.int({ error }).min(min, { error }).max(max, { error });
}

const timeOfDay = z.string({ error: TIME_RULE }).regex(TIME_PATTERN, { error: TIME_RULE });

function distinctList<T extends z.ZodType>(item: T, max: number, plural: string, one: string) {
  const error = `must be a list of 1 to ${max} ${plural}`;
  return z
    .array(item, { error })
    .min(1, { error })
    .max(max, { error })
    .refine((list) => new Set(list).size === list.length, { error: `must list each ${one} once` });
}

/** An object that rejects unknown fields and names the ones it allows. */
function strictObject<T extends z.ZodRawShape>(shape: T) {
  const allowed = Object.keys(shape).join(', ');
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `unknown field ${issue.keys.map((key) => JSON.stringify(key)).join(', ')}; allowed: ${allowed}`
        : 'must be an object',
  });
}

/** True when `name` is a time zone name this runtime knows (IANA, e.g. `Europe/Berlin`). */
export function isTimeZone(name: string): boolean {
  // Offsets such as "+01:00" are accepted by some runtimes but are not zones: they know no DST.
  if (!/^[A-Za-z]/.test(name)) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

/** Throws POLICY_INVALID unless `timezone` is a time zone name this runtime knows. */
export function checkTimeZone(timezone: string): void {
  if (isTimeZone(timezone)) return;
  throw new HoldfastError(
    'POLICY_INVALID',
    `timezone: ${TIME_ZONE_RULE} (got ${JSON.stringify(timezone)})`,
  );
}

/** Why a cron expression cannot be used, or undefined when it can. */
function cronProblem(expression: string): string | undefined {
  const fields = expression === '' ? 0 : expression.split(' ').length;
  if (fields !== 5) {
    return `must be a cron expression of 5 fields (minute hour day-of-month month day-of-week), not ${fields}`;
  }
  let cron: Cron;
  try {
    cron = new Cron(expression, { ...CRON_OPTIONS, timezone: 'UTC' });
  } catch (error) {
    return `is not a valid cron expression: ${error instanceof Error ? error.message : String(error)}`;
  }
  // Any date a 5-field pattern matches recurs within 28 years, so searching from 1970 is enough.
  if (cron.nextRun(new Date(0)) === null) return 'never matches any date';
  return undefined;
}

const dailySchema = strictObject({
  kind: z.literal('daily'),
  times: distinctList(timeOfDay, 24, 'times HH:MM', 'time'),
});

const weeklySchema = strictObject({
  kind: z.literal('weekly'),
  days: distinctList(
    z.enum(WEEKDAYS, { error: `must be one of ${WEEKDAYS.join(', ')}` }),
    7,
    `days (${WEEKDAYS.join(', ')})`,
    'day',
  ),
  times: distinctList(timeOfDay, 24, 'times HH:MM', 'time'),
});

const hourlySchema = strictObject({
  kind: z.literal('hourly'),
  everyHours: wholeNumber(1, 24),
  start: timeOfDay.default('00:00'),
  durationHours: wholeNumber(1, 24).default(24),
});

const cronSchema = strictObject({
  kind: z.literal('cron'),
  expression: z
    .string({ error: 'must be a cron expression' })
    // Stored with single spaces, so equal schedules compare equal and print the same.
    .overwrite((expression) => expression.trim().split(/\s+/).join(' '))
    .superRefine((expression, ctx) => {
      const problem = cronProblem(expression);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
    }),
});

/** Schema of when a policy runs: one of four kinds, told apart by `kind`. */
export const SCHEDULE_SPEC_SCHEMA = z.discriminatedUnion(
  'kind',
  [dailySchema, weeklySchema, hourlySchema, cronSchema],
  {
    error: (issue) =>
      issue.code === 'invalid_union' && 'options' in issue && Array.isArray(issue.options)
        ? `must be one of ${issue.options.join(', ')}`
        : 'must be an object with a kind',
  },
);

/** Schema of the GFS retention rules. Only `daily` is required; each other rule is optional. */
export const RETENTION_RULES_SCHEMA = strictObject({
  daily: wholeNumber(1, 9999),
  weekly: wholeNumber(1, 5163).optional(),
  monthly: wholeNumber(1, 1188).optional(),
  yearly: wholeNumber(1, 99).optional(),
});

/** Schema of a whole policy; unknown fields anywhere are errors, not silently ignored. */
export const POLICY_SPEC_SCHEMA = strictObject({
  schedule: SCHEDULE_SPEC_SCHEMA,
  timezone: z
    .string({ error: 'must be a time zone name' })
    .refine(isTimeZone, { error: TIME_ZONE_RULE })
    .default('UTC'),
  snapshotDays: wholeNumber(1, 30),
  retention: RETENTION_RULES_SCHEMA,
});

/** A validated policy, as {@link parsePolicySpec} returns it (defaults filled in). */
export type PolicySpec = z.infer<typeof POLICY_SPEC_SCHEMA>;
/** A policy as a client may send it: `timezone`, `start` and `durationHours` may be left out. */
export type PolicySpecInput = z.input<typeof POLICY_SPEC_SCHEMA>;
/** When a policy runs. */
export type ScheduleSpec = z.infer<typeof SCHEDULE_SPEC_SCHEMA>;
/** Runs at the given wall-clock times every day. */
export type DailySchedule = z.infer<typeof dailySchema>;
/** Runs at the given wall-clock times on the given days. */
export type WeeklySchedule = z.infer<typeof weeklySchema>;
/** Runs every `everyHours` hours within a daily window that opens at `start`. */
export type HourlySchedule = z.infer<typeof hourlySchema>;
/** Runs when a 5-field cron expression matches. */
export type CronSchedule = z.infer<typeof cronSchema>;
/** How long recovery points are kept: days, and optionally weeks, months and years. */
export type RetentionRules = z.infer<typeof RETENTION_RULES_SCHEMA>;

/**
 * Validates a policy received from a client. Throws POLICY_INVALID naming every wrong field,
 * what it must be and what it was, e.g. `retention.daily: must be an integer from 1 to 9999
 * (got 0)`.
 */
export function parsePolicySpec(input: unknown): PolicySpec {
  return parseWith(POLICY_SPEC_SCHEMA, input, '');
}

/** Validates a schedule on its own; messages name fields below `path`. Throws POLICY_INVALID. */
export function parseScheduleSpec(input: unknown, path = 'schedule'): ScheduleSpec {
  return parseWith(SCHEDULE_SPEC_SCHEMA, input, path);
}

/** Validates retention rules on their own; messages name fields below `path`. */
export function parseRetentionRules(input: unknown, path = 'retention'): RetentionRules {
  return parseWith(RETENTION_RULES_SCHEMA, input, path);
}

/** The tier a policy needs: more than {@link STANDARD_MAX_SNAPSHOT_DAYS} snapshot days is `enhanced`. */
export function policyTier(spec: Pick<PolicySpec, 'snapshotDays'>): PolicyTier {
  return spec.snapshotDays > STANDARD_MAX_SNAPSHOT_DAYS ? 'enhanced' : 'standard';
}

function parseWith<T extends z.ZodType>(schema: T, input: unknown, path: string): z.infer<T> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const where = joinPath(path, issue.path) || 'policy';
    // Unknown fields are named in the message itself; their values add nothing.
    if (issue.code === 'unrecognized_keys') return `${where}: ${issue.message}`;
    return `${where}: ${issue.message} (${describeValue(valueAt(input, issue.path))})`;
  });
  throw new HoldfastError('POLICY_INVALID', problems.join('; '));
}

function joinPath(base: string, path: readonly PropertyKey[]): string {
  let text = base;
  for (const key of path) {
    if (typeof key === 'number') text += `[${key}]`;
    else text += text === '' ? String(key) : `.${String(key)}`;
  }
  return text;
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let value = input;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'missing';
  if (typeof value === 'number') return `got ${String(value)}`;
  const text = JSON.stringify(value) ?? String(value);
  return `got ${text.length > 80 ? `${text.slice(0, 77)}...` : text}`;
}
