import { randomBytes } from 'node:crypto';

/**
 * A new catalog id: a prefix naming the kind, then 16 random base-32 characters (80 bits), so
 * ids never collide across restarts or hosts and say what they are in logs.
 */
export function newResourceId<T extends string>(prefix: string): T {
  const alphabet = '0123456789abcdefghjkmnpqrstvwxyz';
  let text = '';
  for (const byte of randomBytes(16)) text += alphabet[byte & 31];
  return `${prefix}_${text}` as T;
}
