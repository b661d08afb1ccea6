import { HoldfastError } from '../core/index.js';
import { parsePolicySpec, parseScheduleText, Scheduler, type PolicySpec } from '../jobs/index.js';
import type { CreatePolicyInput, PolicyBody, PolicyView } from './api-model.js';
import { refuseShorterRetention } from './immutability.js';
import { policyNamed } from './names.js';
import type { ServiceDeps } from './service-deps.js';
import { policyView } from './views.js';

/** Instant-restore snapshots are kept 2 days unless a policy says otherwise (Azure's default). */
export const DEFAULT_SNAPSHOT_DAYS = 2;

/** Turns the API's policy body (schedule as object or text) into a validated spec. */
export function policySpecOf(body: PolicyBody): PolicySpec {
  const schedule =
    typeof body.schedule === 'string' ? parseScheduleText(body.schedule) : body.schedule;
  return parsePolicySpec({
    schedule,
    retention: body.retention,
    ...(body.timezone !== undefined ? { timezone: body.timezone } : {}),
    snapshotDays: body.snapshotDays ?? DEFAULT_SNAPSHOT_DAYS,
  });
}

/** Policies: create, list, show, replace, delete. */
export class PolicyService {
  constructor(private readonly deps: ServiceDeps) {}

  async create(input: CreatePolicyInput): Promise<PolicyView> {
    const { name, ...body } = input;
    const spec = policySpecOf(body);
    if (await this.deps.catalog.policies.byName(name))
      throw new HoldfastError('RESOURCE_EXISTS', `A policy named '${name}' already exists.`);
    return policyView(await this.deps.catalog.policies.create(name, spec), 0);
  }

  async list(): Promise<PolicyView[]> {
    const items = await this.deps.catalog.items.list();
    return (await this.deps.catalog.policies.list()).map((p) =>
      policyView(p, items.filter((i) => i.policyId === p.id).length),
    );
  }

  async show(name: string): Promise<PolicyView> {
    const policy = await policyNamed(this.deps.catalog, name);
    return policyView(policy, (await this.deps.catalog.items.list({ policyId: policy.id })).length);
  }

  /**
   * Replaces a policy's schedule and rules. Items under it get their next run from the new
   * schedule; points already taken keep the expiry they were given (docs/policies.md).
   */
  async update(name: string, body: PolicyBody): Promise<PolicyView> {
    const { catalog, clock } = this.deps;
    const policy = await policyNamed(catalog, name);
    const spec = policySpecOf(body);
    await refuseShorterRetention(
      catalog,
      await catalog.items.list({ policyId: policy.id }),
      policy.spec,
      spec,
    );
    await catalog.transaction(async (trx) => {
      await trx.policies.update(policy.id, spec);
      for (const item of await trx.items.list({ policyId: policy.id }))
        if (item.state === 'protected')
          await trx.items.update(item.id, {
            nextRunAt: Scheduler.nextRunOf(item, spec, clock.now()),
          });
    });
    return this.show(name);
  }

  async remove(name: string): Promise<void> {
    const policy = await policyNamed(this.deps.catalog, name);
    const items = await this.deps.catalog.items.list({ policyId: policy.id });
    if (items.length > 0)
      throw new HoldfastError(
        'RESOURCE_IN_USE',
        `Policy '${name}' is used by ${items.map((i) => i.name).join(', ')}; give them another policy first.`,
      );
    await this.deps.catalog.policies.delete(policy.id);
  }
}
