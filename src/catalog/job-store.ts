import type { Kysely } from 'kysely';
import type { Clock } from '../core/index.js';
import { num, readJson, writeJson } from './json-column.js';
import type {
  ItemRef,
  JobAttempt,
  JobId,
  JobItemError,
  JobPhase,
  JobRecord,
  JobState,
  JobTrigger,
  JobType,
  VaultRef,
} from './records.js';
import { newResourceId } from './resource-id.js';
import type { CatalogDatabase, JobRow, JobUpdate } from './schema.js';

/** What a new job needs. */
export interface NewJob {
  readonly type: JobType;
  readonly trigger: JobTrigger;
  readonly itemId?: ItemRef | null;
  readonly vaultId?: VaultRef | null;
  readonly params?: Record<string, unknown>;
  readonly phases: readonly string[];
  readonly maxRetries: number;
  readonly scheduledFor?: number | null;
  readonly runAfter?: number;
}

/** Fields of a job the runner changes. */
export interface JobChange {
  readonly state?: JobState;
  readonly phases?: readonly JobPhase[];
  readonly result?: Record<string, unknown> | null;
  readonly errors?: readonly JobItemError[];
  readonly attempts?: readonly JobAttempt[];
  readonly retryCount?: number;
  readonly runAfter?: number;
  readonly startedAt?: number | null;
  readonly endedAt?: number | null;
}

/** Which jobs to list. */
export interface JobFilter {
  readonly itemId?: ItemRef;
  readonly vaultId?: VaultRef;
  readonly states?: readonly JobState[];
  readonly types?: readonly JobType[];
  readonly limit?: number;
}

const ACTIVE: readonly JobState[] = ['queued', 'running', 'waiting_retry'];

/** Jobs: their queue, their states and their progress. */
export class JobStore {
  constructor(
    private readonly db: Kysely<CatalogDatabase>,
    private readonly clock: Clock,
  ) {}

  /** Queues a job. */
  async create(job: NewJob): Promise<JobRecord> {
    const now = this.clock.now();
    const row: JobRow = {
      id: newResourceId<JobId>('job'),
      type: job.type,
      state: 'queued',
      trigger: job.trigger,
      item_id: job.itemId ?? null,
      vault_id: job.vaultId ?? null,
      params_json: writeJson(job.params ?? {}),
      phases_json: writeJson(job.phases.map((name) => ({ name, state: 'pending' }))),
      result_json: null,
      errors_json: '[]',
      attempts_json: '[]',
      retry_count: 0,
      max_retries: job.maxRetries,
      run_after: job.runAfter ?? now,
      cancel_requested: 0,
      scheduled_for: job.scheduledFor ?? null,
      created_at: now,
      started_at: null,
      ended_at: null,
      updated_at: now,
    };
    await this.db.insertInto('jobs').values(row).execute();
    return toJob(row);
  }

  /** The job with this id, or undefined. */
  async byId(id: string): Promise<JobRecord | undefined> {
    const row = await this.db
      .selectFrom('jobs')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row && toJob(row);
  }

  /** Jobs, newest first. */
  async list(filter: JobFilter = {}): Promise<JobRecord[]> {
    let query = this.db.selectFrom('jobs').selectAll();
    if (filter.itemId !== undefined) query = query.where('item_id', '=', filter.itemId);
    if (filter.vaultId !== undefined) query = query.where('vault_id', '=', filter.vaultId);
    if (filter.states !== undefined && filter.states.length > 0)
      query = query.where('state', 'in', [...filter.states]);
    if (filter.types !== undefined && filter.types.length > 0)
      query = query.where('type', 'in', [...filter.types]);
    const rows = await query
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(filter.limit ?? 200)
      .execute();
    return rows.map(toJob);
  }

  /** Jobs not yet ended of one type for an item (or vault), to keep runs from overlapping. */
  async active(
    type: JobType,
    scope: { itemId?: ItemRef; vaultId?: VaultRef },
  ): Promise<JobRecord[]> {
    return this.list({ ...scope, types: [type], states: ACTIVE });
  }

  /** Jobs ready to start at `now`, oldest first. */
  async ready(now: number, limit: number): Promise<JobRecord[]> {
    const rows = await this.db
      .selectFrom('jobs')
      .selectAll()
      .where('state', 'in', ['queued', 'waiting_retry'])
      .where('run_after', '<=', now)
      .orderBy('run_after')
      .orderBy('created_at')
      .limit(limit)
      .execute();
    return rows.map(toJob);
  }

  /**
   * Moves a ready job to `running` unless another runner got there first: the update only
   * matches while the job is still in the state it was read in.
   */
  async claim(job: JobRecord): Promise<JobRecord | undefined> {
    const now = this.clock.now();
    const result = await this.db
      .updateTable('jobs')
      .set({ state: 'running', started_at: job.startedAt ?? now, updated_at: now })
      .where('id', '=', job.id)
      .where('state', '=', job.state)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1 ? this.byId(job.id) : undefined;
  }

  /** Jobs left `running` by a server that stopped without finishing them. */
  async running(): Promise<JobRecord[]> {
    return this.list({ states: ['running'], limit: 10_000 });
  }

  /** Changes the given fields. */
  async update(id: JobId, change: JobChange): Promise<void> {
    const set: JobUpdate = { updated_at: this.clock.now() };
    if (change.state !== undefined) set.state = change.state;
    if (change.phases !== undefined) set.phases_json = writeJson(change.phases);
    if (change.result !== undefined)
      set.result_json = change.result === null ? null : writeJson(change.result);
    if (change.errors !== undefined) set.errors_json = writeJson(change.errors);
    if (change.attempts !== undefined) set.attempts_json = writeJson(change.attempts);
    if (change.retryCount !== undefined) set.retry_count = change.retryCount;
    if (change.runAfter !== undefined) set.run_after = change.runAfter;
    if (change.startedAt !== undefined) set.started_at = change.startedAt;
    if (change.endedAt !== undefined) set.ended_at = change.endedAt;
    await this.db.updateTable('jobs').set(set).where('id', '=', id).execute();
  }

  /** Marks a job for cancellation; false when it has already ended. */
  async requestCancel(id: JobId): Promise<boolean> {
    const result = await this.db
      .updateTable('jobs')
      .set({ cancel_requested: 1, updated_at: this.clock.now() })
      .where('id', '=', id)
      .where('state', 'in', [...ACTIVE])
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** Counts of jobs per state, for metrics. */
  async countByState(): Promise<Array<{ type: string; state: string; count: number }>> {
    const rows = await this.db
      .selectFrom('jobs')
      .select(['type', 'state', (eb) => eb.fn.countAll<number>().as('n')])
      .groupBy(['type', 'state'])
      .execute();
    return rows.map((r) => ({ type: r.type, state: r.state, count: Number(r.n) }));
  }
}

function toJob(row: JobRow): JobRecord {
  return {
    id: row.id as JobId,
    type: row.type as JobType,
    state: row.state as JobState,
    trigger: row.trigger as JobTrigger,
    itemId: row.item_id as ItemRef | null,
    vaultId: row.vault_id as VaultRef | null,
    params: readJson<Record<string, unknown>>(row.params_json, 'jobs.params_json'),
    phases: readJson<JobPhase[]>(row.phases_json, 'jobs.phases_json'),
    result:
      row.result_json === null
        ? null
        : readJson<Record<string, unknown>>(row.result_json, 'jobs.result_json'),
    errors: readJson<JobItemError[]>(row.errors_json, 'jobs.errors_json'),
    attempts: readJson<JobAttempt[]>(row.attempts_json, 'jobs.attempts_json'),
    retryCount: row.retry_count,
    maxRetries: row.max_retries,
    runAfter: num(row.run_after),
    cancelRequested: row.cancel_requested === 1,
    scheduledFor: num(row.scheduled_for),
    createdAt: num(row.created_at),
    startedAt: num(row.started_at),
    endedAt: num(row.ended_at),
    updatedAt: num(row.updated_at),
  };
}
