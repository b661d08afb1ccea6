import { forEachLimit, HoldfastError, isHoldfastError } from '../core/index.js';
import { decodePoint, type Point, type Vault } from '../engine/index.js';

/**
 * Loads every recovery point of a vault, oldest first. Damaged ones go to `onDamage`; one
 * forgotten between listing and loading (by a concurrent retention run) is simply gone.
 */
export async function listPoints(
  vault: Vault,
  onDamage?: (id: string, error: unknown) => void,
): Promise<Point[]> {
  const ids = await vault.listObjects('point');
  const points: Point[] = [];
  await forEachLimit(ids, 8, async (id) => {
    try {
      points.push(decodePoint(id, await vault.loadObject('point', id)));
    } catch (error) {
      if (isHoldfastError(error, 'BACKEND_NOT_FOUND')) return;
      if (!onDamage) throw error;
      onDamage(id, error);
    }
  });
  return points.sort((a, b) => a.time.localeCompare(b.time) || a.id.localeCompare(b.id));
}

/** Filters that narrow which points `latest` and listings consider. */
export interface PointFilter {
  readonly host?: string;
  readonly tags?: readonly string[];
  readonly paths?: readonly string[];
}

/** True when a point passes the filter. */
export function matchesFilter(point: Point, filter: PointFilter): boolean {
  if (filter.host !== undefined && point.host !== filter.host) return false;
  if (filter.tags?.length && !filter.tags.every((t) => point.tags.includes(t))) return false;
  if (
    filter.paths?.length &&
    [...filter.paths].sort().join('\0') !== [...point.paths].sort().join('\0')
  )
    return false;
  return true;
}

/**
 * Finds a point by `latest`, a full id or a unique id prefix (at least 4 hex digits).
 * Throws POINT_NOT_FOUND or POINT_AMBIGUOUS with what to do.
 */
export function resolvePoint(
  points: readonly Point[],
  ref: string,
  filter: PointFilter = {},
): Point {
  if (ref === 'latest') {
    const candidates = points.filter((p) => matchesFilter(p, filter));
    const newest = candidates[candidates.length - 1];
    if (!newest)
      throw new HoldfastError(
        'POINT_NOT_FOUND',
        'The vault has no recovery point yet (matching the filters). Run a backup first.',
      );
    return newest;
  }
  if (!/^[0-9a-f]{4,64}$/.test(ref)) {
    throw new HoldfastError(
      'USAGE_INVALID',
      `'${ref}' is not a point id: use 'latest' or an id (or at least 4 leading hex digits of one) from 'holdfast points'.`,
    );
  }
  const matches = points.filter((p) => p.id.startsWith(ref));
  if (matches.length === 1) return matches[0]!;
  if (matches.length === 0)
    throw new HoldfastError(
      'POINT_NOT_FOUND',
      `No recovery point ${ref}. List them with 'holdfast points'.`,
    );
  throw new HoldfastError(
    'POINT_AMBIGUOUS',
    `${ref} matches ${matches.length} points; give more digits.`,
  );
}
