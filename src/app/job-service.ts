import {
  JOB_STATES,
  JOB_TYPES,
  type JobId,
  type JobState,
  type JobType,
} from '../catalog/index.js';
import { HoldfastError } from '../core/index.js';
import { itemNamed, nameLookup } from './names.js';
import type { ServiceDeps } from './service-deps.js';
import type { JobView } from './api-model.js';
import { jobView } from './views.js';

/** Filters of a job listing, as the API takes them. */
export interface JobListQuery {
  readonly item?: string | undefined;
  /** Comma-separated states. */
  readonly state?: string | undefined;
  /** Comma-separated types. */
  readonly type?: string | undefined;
  readonly limit?: number | undefined;
}

/** Jobs: list, show, cancel. */
export class JobService {
  constructor(private readonly deps: ServiceDeps) {}

  async list(query: JobListQuery = {}): Promise<JobView[]> {
    const { catalog } = this.deps;
    const states = oneOf(query.state, JOB_STATES, 'state') as JobState[];
    const types = oneOf(query.type, JOB_TYPES, 'type') as JobType[];
    const item = query.item === undefined ? undefined : await itemNamed(catalog, query.item);
    const jobs = await catalog.jobs.list({
      ...(item ? { itemId: item.id } : {}),
      states,
      types,
      limit: query.limit ?? 100,
    });
    const names = await nameLookup(catalog);
    return jobs.map((j) => jobView(j, names));
  }

  async show(id: string): Promise<JobView> {
    const job = await this.deps.catalog.jobs.byId(id);
    if (job === undefined)
      throw new HoldfastError(
        'RESOURCE_NOT_FOUND',
        `No job ${id}. List them with 'holdfast job list'.`,
      );
    return jobView(job, await nameLookup(this.deps.catalog));
  }

  async cancel(id: string): Promise<JobView> {
    await this.show(id);
    await this.deps.runner.cancel(id as JobId);
    return this.show(id);
  }
}

function oneOf(text: string | undefined, allowed: readonly string[], what: string): string[] {
  if (text === undefined || text === '') return [];
  const values = text.split(',').map((v) => v.trim());
  const wrong = values.filter((v) => !allowed.includes(v));
  if (wrong.length > 0)
    throw new HoldfastError(
      'REQUEST_INVALID',
      `Unknown job ${what} '${wrong.join(', ')}'; one of: ${allowed.join(', ')}.`,
    );
  return values;
}
