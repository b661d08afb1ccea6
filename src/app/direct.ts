/**
 * app without the control plane: opening vaults by location, resolving points, backing up
 * files, forgetting and pruning, and where the server keeps its data. The CLI's direct commands
 * and server clients import this face, which loads no catalog, scheduler, mail or HTTP server
 * (index.ts re-exports it with the rest).
 */
export * from './open-vault.js';
export * from './resolve-point.js';
export * from './data-dir.js';
export * from './file-backup.js';
export * from './vault-maintenance.js';
