/** app: use cases, and the one place that wires concrete backends and the engine together. */
export * from './direct.js';
export * from './api-model.js';
export * from './control-plane.js';
export * from './server-keys.js';
export * from './token-service.js';
export * from './views.js';
export type { DeliveryView } from './notification-service.js';
export type { JobListQuery } from './job-service.js';
export type { AuditView } from './audit.js';
export * from './vault-objects.js';
