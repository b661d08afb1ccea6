/** catalog: the metadata database (vaults, policies, items, points, jobs, tokens, settings). */
export * from './catalog.js';
export * from './records.js';
export type { NewVault } from './vault-store.js';
export { EMPTY_USAGE } from './vault-store.js';
export type { NewItem, ItemChange } from './item-store.js';
export type { NewPoint, PointChange } from './point-store.js';
export type { NewJob, JobChange, JobFilter } from './job-store.js';
export type { AuditEvent } from './event-store.js';
