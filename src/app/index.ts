/** app: use cases, and the one place that wires concrete backends and the engine together. */
export * from './open-vault.js';
export * from './resolve-point.js';
export * from './api-model.js';
export * from './data-dir.js';
