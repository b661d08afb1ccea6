import { expect } from 'vitest';
import { HoldfastError } from './errors.js';

/** The HoldfastError `promise` rejects with; fails the test if it resolves or throws another. */
export async function expectFailure(promise: Promise<unknown>): Promise<HoldfastError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(HoldfastError);
  return error as HoldfastError;
}
