// Deterministic pseudo-random data: a seeded generator and random, log-text and record blocks.

export function mix32(a, b) {
  let h = (Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x632be5ab, 0xc2b2ae35)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h >>> 0 || 0x2545f491;
}

export class Rng {
  constructor(seed) {
    this.x = mix32(seed, 0x51ed270b) | 0;
  }
  next() {
    let x = this.x;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.x = x;
    return x >>> 0;
  }
  below(n) {
    return Math.floor((this.next() / 0x100000000) * n);
  }
  float() {
    return this.next() / 0x100000000;
  }
}

/** Fills buf (length a multiple of 4, 4-aligned) with xorshift32 output. */
export function fillRandom(buf, seed) {
  const u = new Uint32Array(buf.buffer, buf.byteOffset, buf.byteLength >>> 2);
  let x = mix32(seed, 0x1b873593) | 0;
  for (let i = 0; i < u.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    u[i] = x;
  }
}

/** Picks k distinct integers from [0, n) (partial Fisher-Yates), in pick order. */
export function pickDistinct(n, k, rng) {
  const idx = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < k; i++) {
    const j = i + rng.below(n - i);
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  return idx.slice(0, k);
}

const HOSTS = ['web-01', 'web-02', 'db-01', 'cache-03', 'worker-07', 'edge-11'];
const PATHS = [
  '/api/v1/items',
  '/api/v1/users',
  '/login',
  '/static/app.js',
  '/health',
  '/api/v2/orders',
];
const METHODS = ['GET', 'GET', 'GET', 'POST', 'PUT', 'DELETE'];
const LEVELS = ['INFO', 'INFO', 'INFO', 'DEBUG', 'WARN', 'ERROR'];
const WORDS = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel'];

/** A 1 MiB block of log lines: text that compresses well, like logs or source files. */
export function fillTextBlock(buf, seed) {
  const rng = new Rng(seed);
  let t = Date.UTC(2024, 0, 1) + rng.below(300 * 86400) * 1000;
  const parts = [];
  let length = 0;
  while (length < buf.length) {
    t += rng.below(2000);
    const line =
      `${new Date(t).toISOString()} ${HOSTS[rng.below(6)]} ${LEVELS[rng.below(6)]} ` +
      `req=${rng.next().toString(16).padStart(8, '0')} ${METHODS[rng.below(6)]} ` +
      `${PATHS[rng.below(6)]}/${rng.below(100000)} status=${rng.below(8) === 0 ? 404 : 200} ` +
      `bytes=${rng.below(65536)} ms=${rng.below(900)} user=${WORDS[rng.below(8)]}\n`;
    parts.push(line);
    length += line.length;
  }
  buf.write(parts.join('').slice(0, buf.length), 0, 'latin1');
}

/** A 1 MiB block of 8 KiB database-like pages with fixed-width records and padding. */
export function fillRecordBlock(buf, seed) {
  const rng = new Rng(seed);
  buf.fill(0);
  let id = rng.below(1 << 20);
  let ts = 1_700_000_000 + rng.below(1 << 24);
  for (let page = 0; page < buf.length; page += 8192) {
    buf.writeUInt32LE(0xdb0c0de5, page);
    buf.writeUInt32LE(page / 8192, page + 4);
    const records = 80 + rng.below(40);
    for (let r = 0; r < records; r++) {
      const o = page + 64 + r * 64;
      buf.writeUInt32LE(id++, o);
      buf.writeUInt32LE((ts += rng.below(60)), o + 4);
      buf.writeUInt16LE(rng.below(16), o + 8);
      buf.writeUInt32LE(rng.below(100000), o + 12);
      buf.write(WORDS[rng.below(8)], o + 16, 'latin1');
      buf.write(HOSTS[rng.below(6)], o + 32, 'latin1');
    }
  }
}
