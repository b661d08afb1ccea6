import type { Catalog } from '../catalog/index.js';
import type { Clock } from '../core/index.js';
import type { JobRunner } from '../jobs/index.js';
import type { VaultAccess } from './vault-access.js';

/** What the control plane's services share. */
export interface ServiceDeps {
  readonly catalog: Catalog;
  readonly clock: Clock;
  readonly dataDir: string;
  readonly access: VaultAccess;
  readonly runner: JobRunner;
  /** Retries a failed job gets (settings). */
  readonly jobRetries: number;
  /** Starts queued jobs now instead of at the next tick. */
  readonly kick: () => void;
}
