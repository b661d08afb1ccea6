/** Helpers for engine tests: small fast vaults on the in-memory backend, seeded data. */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryBackend, type Backend } from '../backends/index.js';
import { Archiver, type BackupOptions } from './archiver.js';
import { InlineBlobSealer } from './blob-sealer.js';
import type { ChunkSink } from './chunk-window.js';
import type { Point } from './point.js';
import { Vault, type VaultConfig } from './vault.js';

/** The passphrase every test vault uses. */
export const TEST_PASSPHRASE = 'correct horse battery staple';

/** Small chunks and packs so tests exercise many of each with little data. */
export const TEST_CONFIG: VaultConfig = {
  chunker: { minSize: 4 * 1024, avgSize: 16 * 1024, maxSize: 64 * 1024 },
  compressionLevel: 3,
  packSize: 256 * 1024,
};

/** Creates a vault (cheap scrypt) on `backend` or a fresh memory backend. */
export async function makeTestVault(
  backend: Backend = new MemoryBackend(),
  config: VaultConfig = TEST_CONFIG,
): Promise<Vault> {
  return Vault.init(
    backend,
    { kind: 'passphrase', passphrase: TEST_PASSPHRASE },
    { config, scrypt: { N: 1024, r: 8, p: 1 } },
  );
}

/** Reopens a test vault from its backend, as another process would. */
export async function reopenTestVault(backend: Backend): Promise<Vault> {
  const vault = await Vault.open(backend, { kind: 'passphrase', passphrase: TEST_PASSPHRASE });
  await vault.loadIndex();
  return vault;
}

/** Backs up paths with an inline sealer. */
export async function backupPaths(
  vault: Vault,
  paths: string[],
  extra: Partial<BackupOptions> = {},
): Promise<Point> {
  const sealer = new InlineBlobSealer(vault.keys.encryption, {
    level: vault.config.compressionLevel,
  });
  return new Archiver(vault, { paths, sealer, ...extra }).run();
}

/** A seeded pseudo-random generator (mulberry32): same seed, same bytes. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `size` seeded random bytes. */
export function randomBytesSeeded(size: number, seed: number): Buffer {
  const next = seededRandom(seed);
  const words = new Uint32Array(Math.ceil(size / 4));
  for (let i = 0; i < words.length; i += 1) words[i] = Math.floor(next() * 4294967296);
  return Buffer.from(words.buffer).subarray(0, size);
}

/** A fresh temporary directory; remove it with `cleanup`. */
export async function tempDir(
  prefix = 'holdfast-test-',
): Promise<{ path: string; cleanup(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}

/** Writes a small tree described as `{ 'a/b.txt': 'content' | Buffer }`. */
export async function writeTree(
  root: string,
  files: Record<string, string | Buffer>,
): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    const full = join(root, rel);
    await mkdir(join(full, '..'), { recursive: true });
    await writeFile(full, content);
  }
}

/** A chunk sink that keeps every chunk in memory under its SHA-256. */
export function memoryChunkSink(): ChunkSink & { chunks: Map<string, Buffer> } {
  const chunks = new Map<string, Buffer>();
  return {
    chunks,
    save(_type, data) {
      const id = createHash('sha256').update(data).digest('hex');
      chunks.set(id, Buffer.from(data));
      return Promise.resolve({ id });
    },
  };
}
