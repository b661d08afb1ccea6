import { describe, expect, it } from 'vitest';
import { HoldfastError, isHoldfastError, throwIfAborted } from './errors.js';

describe('HoldfastError', () => {
  it('carries a code and a cause', () => {
    const cause = new Error('disk on fire');
    const error = new HoldfastError('BACKEND_IO', 'could not write', { cause });
    expect(error.code).toBe('BACKEND_IO');
    expect(error.cause).toBe(cause);
    expect(isHoldfastError(error, 'BACKEND_IO')).toBe(true);
    expect(isHoldfastError(error, 'VAULT_INTEGRITY')).toBe(false);
  });

  it('throwIfAborted throws CANCELLED only once aborted', () => {
    const controller = new AbortController();
    expect(() => throwIfAborted(controller.signal)).not.toThrow();
    controller.abort();
    expect(() => throwIfAborted(controller.signal)).toThrow(HoldfastError);
  });
});
