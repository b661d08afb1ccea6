/** core: ids, errors with codes, clock, byte helpers. Imports nothing of Holdfast's. */
export * from './errors.js';
export * from './ids.js';
export * from './clock.js';
export * from './bytes.js';
export * from './concurrency.js';
