/**
 * The one-line text form of a schedule, as the CLI reads and prints it. Every schedule has
 * exactly one canonical text, and `parseScheduleText(formatScheduleText(s))` gives `s` back.
 */
import { HoldfastError, isHoldfastError } from '../core/index.js';
import { parseScheduleSpec, type ScheduleSpec } from './policy.js';

/** The forms {@link parseScheduleText} accepts, for help texts and error messages. */
export const SCHEDULE_TEXT_FORMS = [
  'daily HH:MM[,HH:MM...]',
  'weekly DAY[,DAY...] HH:MM[,HH:MM...]',
  'every <N>h [from HH:MM] [for <M>h]',
  '<5-field cron expression>',
] as const;

const ACCEPTED =
  `Accepted forms: ${SCHEDULE_TEXT_FORMS.map((form) => `"${form}"`).join(', ')}; ` +
  'for example "daily 02:00,14:30", "weekly mon,thu 22:00", "every 4h from 08:00 for 12h" ' +
  'or "0 */6 * * *".';

const HOURS = /^(\d{1,3})h$/;
const DEFAULT_START = '00:00';
const DEFAULT_DURATION_HOURS = 24;

/**
 * Reads a schedule written as text:
 * - `daily 02:00` or `daily 02:00,14:30`
 * - `weekly mon,thu 22:00` (times may be a comma list too)
 * - `every 4h from 08:00 for 24h` (`from` defaults to 00:00, `for` to 24h; either order)
 * - anything else must be a 5-field cron expression such as `30 1 * * 1-5`.
 *
 * Keywords, day names and the `h` unit may be in any case; spacing may vary. Throws
 * POLICY_INVALID naming the problem and listing the accepted forms.
 */
export function parseScheduleText(text: string): ScheduleSpec {
  const words = text
    .trim()
    .split(/\s+/)
    .filter((word) => word !== '');
  const keyword = words[0]?.toLowerCase();
  if (keyword === 'daily') {
    if (words.length !== 2) fail(text, 'a daily schedule is "daily HH:MM[,HH:MM...]"');
    return validate(text, { kind: 'daily', times: list(words[1]) });
  }
  if (keyword === 'weekly') {
    if (words.length !== 3) fail(text, 'a weekly schedule is "weekly DAY[,DAY...] HH:MM[,...]"');
    return validate(text, {
      kind: 'weekly',
      days: list(words[1]?.toLowerCase()),
      times: list(words[2]),
    });
  }
  if (keyword === 'every') return parseEvery(text, words.slice(1));
  if (words.length === 0) fail(text, 'the schedule is empty');
  if (words.length !== 5) {
    fail(
      text,
      `a cron expression has 5 fields (minute hour day-of-month month day-of-week), ` +
        `this has ${words.length}`,
    );
  }
  return validate(text, { kind: 'cron', expression: words.join(' ') });
}

/**
 * The canonical text of a schedule: lists in their stored order, `from` and `for` left out
 * when they are the defaults, a cron expression as stored (single spaces).
 */
export function formatScheduleText(spec: ScheduleSpec): string {
  switch (spec.kind) {
    case 'daily':
      return `daily ${spec.times.join(',')}`;
    case 'weekly':
      return `weekly ${spec.days.join(',')} ${spec.times.join(',')}`;
    case 'hourly': {
      const from = spec.start === DEFAULT_START ? '' : ` from ${spec.start}`;
      const duration =
        spec.durationHours === DEFAULT_DURATION_HOURS ? '' : ` for ${spec.durationHours}h`;
      return `every ${spec.everyHours}h${from}${duration}`;
    }
    case 'cron':
      return spec.expression;
  }
}

/** `<N>h [from HH:MM] [for <M>h]`, the two options in either order. */
function parseEvery(text: string, words: readonly string[]): ScheduleSpec {
  const form = 'an hourly schedule is "every <N>h [from HH:MM] [for <M>h]"';
  const [interval = '', ...rest] = words.map((word) => word.toLowerCase());
  const every = HOURS.exec(interval);
  if (every === null || rest.length % 2 !== 0) fail(text, form);
  const options = new Map<string, string>();
  for (let i = 0; i < rest.length; i += 2) {
    const [key = '', value = ''] = rest.slice(i, i + 2);
    if ((key !== 'from' && key !== 'for') || options.has(key)) fail(text, form);
    options.set(key, value);
  }
  const duration = options.get('for');
  const durationMatch = duration === undefined ? undefined : HOURS.exec(duration);
  if (durationMatch === null) fail(text, form);
  return validate(text, {
    kind: 'hourly',
    everyHours: Number(every[1]),
    start: options.get('from') ?? DEFAULT_START,
    durationHours: durationMatch === undefined ? DEFAULT_DURATION_HOURS : Number(durationMatch[1]),
  });
}

function list(word: string | undefined): string[] {
  return (word ?? '').split(',');
}

function validate(text: string, candidate: unknown): ScheduleSpec {
  try {
    return parseScheduleSpec(candidate, '');
  } catch (error) {
    if (!isHoldfastError(error, 'POLICY_INVALID')) throw error;
    throw new HoldfastError(
      'POLICY_INVALID',
      `Schedule ${JSON.stringify(text)} is invalid: ${error.message}. ${ACCEPTED}`,
      { cause: error },
    );
  }
}

function fail(text: string, problem: string): never {
  throw new HoldfastError(
    'POLICY_INVALID',
    `Schedule ${JSON.stringify(text)} is not understood: ${problem}. ${ACCEPTED}`,
  );
}
