import { HoldfastError } from '../core/index.js';
import type { Backend, RetentionOptions } from './backend.js';

/**
 * The wrapped backend's `extendRetention`, for wrappers that pass it on; a backend without
 * object locks is a caller's mistake (it should have checked `capabilities.objectLock`).
 */
export function requireRetention(
  backend: Backend,
): (name: string, until: number, options: RetentionOptions) => Promise<void> {
  const extend = backend.extendRetention;
  if (extend === undefined || !backend.capabilities.objectLock)
    throw new HoldfastError(
      'INTERNAL',
      `The backend at ${backend.location} cannot lock objects; check capabilities.objectLock first.`,
    );
  return (name, until, options) => extend.call(backend, name, until, options);
}
