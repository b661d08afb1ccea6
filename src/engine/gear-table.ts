import { createHash } from 'node:crypto';

/** Length in bytes of the secret seed a gear table is derived from. */
export const GEAR_SEED_BYTES = 32;

/**
 * Number of most recent bytes that influence a 32-bit gear hash: each step shifts left by one,
 * so a byte's contribution leaves the word after 32 steps.
 */
export const GEAR_WINDOW = 32;

// Versioned so that a future table derivation can never collide with this one.
const DOMAIN = Buffer.from('holdfast/chunker/gear/v1\0', 'utf8');
const ENTRIES = 256;
const ENTRIES_PER_BLOCK = 8; // a SHA-256 digest holds eight 32-bit words

/**
 * Derives the 256-entry gear table of the rolling hash from a secret seed.
 *
 * Block `i` is `SHA-256(domain || seed || uint32be(i))`, read as eight big-endian 32-bit words,
 * so the table is the same on every platform. Without the seed the table, and with it the
 * chunk boundaries, are unpredictable: boundaries then reveal nothing about the content to
 * someone who sees only chunk sizes.
 *
 * The table is an `Int32Array` (same bits as uint32) so that the hash loop stays in signed
 * 32-bit integers, which V8 keeps in machine registers.
 */
export function deriveGearTable(seed: Uint8Array): Int32Array {
  if (seed.byteLength !== GEAR_SEED_BYTES) {
    throw new RangeError(
      `Chunker seed must be ${GEAR_SEED_BYTES} bytes, got ${seed.byteLength}; derive it from the vault key.`,
    );
  }
  const table = new Int32Array(ENTRIES);
  const counter = Buffer.alloc(4);
  for (let block = 0; block < ENTRIES / ENTRIES_PER_BLOCK; block++) {
    counter.writeUInt32BE(block, 0);
    const digest = createHash('sha256').update(DOMAIN).update(seed).update(counter).digest();
    for (let word = 0; word < ENTRIES_PER_BLOCK; word++) {
      table[block * ENTRIES_PER_BLOCK + word] = digest.readInt32BE(word * 4);
    }
  }
  return table;
}

/**
 * A 32-bit mask with `bits` one-bits spread evenly over the top `min(32, 2 * bits)` bits of the
 * word, returned as a signed 32-bit integer.
 *
 * Why spread: adjacent mask bits of consecutive gear hashes are shifted copies of each other,
 * so a contiguous mask makes neighbouring cut tests correlated; gaps between the bits make them
 * closer to independent. Why high: bit `k` of the hash depends on the last `k + 1` bytes, so
 * high bits see the widest window. A hash matches the mask with probability about `2^-bits`.
 */
export function spreadMask(bits: number): number {
  if (!Number.isInteger(bits) || bits < 1 || bits > 32) {
    throw new RangeError(`Mask bit count must be an integer in [1, 32], got ${bits}.`);
  }
  const width = Math.min(32, 2 * bits);
  let mask = 0;
  for (let j = 0; j < bits; j++) mask |= 1 << (31 - Math.floor((j * width) / bits));
  return mask | 0;
}
