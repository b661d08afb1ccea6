import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { failureCode } from '../backends/backend-conformance.testkit.js';
import { faultyMemoryStack } from '../backends/faulty-stack.testkit.js';
import { checkVault } from './checker.js';
import {
  backupPaths,
  makeTestVault,
  randomBytesSeeded,
  reopenTestVault,
  tempDir,
  TEST_CONFIG,
  TEST_PASSPHRASE,
  writeTree,
} from './engine.testkit.js';
import { Restorer } from './restorer.js';
import { Vault, type VaultConfig } from './vault.js';

/** A few MiB over several files, one of them a duplicate, so dedup and many packs are involved. */
const TREE: Record<string, Buffer> = {
  'docs/report.bin': randomBytesSeeded(1_500_000, 1),
  'docs/copy-of-report.bin': randomBytesSeeded(1_500_000, 1),
  'media/clip.bin': randomBytesSeeded(1_100_000, 2),
  'media/thumb.bin': randomBytesSeeded(90_000, 3),
  'notes.txt': Buffer.from('remember the milk\n'.repeat(2_000)),
  'empty.txt': Buffer.alloc(0),
};

/** Small packs, so the backup makes dozens of requests for the faults to hit. */
const CONFIG: VaultConfig = { ...TEST_CONFIG, packSize: 64 * 1024 };

describe('a backup through storage that fails 10% of its calls', () => {
  let dir: { path: string; cleanup(): Promise<void> };
  let src: string;

  beforeEach(async () => {
    dir = await tempDir();
    src = join(dir.path, 'src');
    await writeTree(src, TREE);
  });

  afterEach(async () => {
    await dir.cleanup();
  });

  it('completes, verifies and restores byte for byte through the retrying stack', async () => {
    const { backend, faulty, memory } = faultyMemoryStack({ failureRate: 0.1, seed: 2024 });
    const vault = await makeTestVault(backend, CONFIG);
    const point = await backupPaths(vault, [src]);
    expect(point.stats.errors).toBe(0);
    const faultsDuringBackup = faulty.faultCount('fail-transient');
    console.log(
      'calls',
      faulty.callCount('any'),
      faulty.callCount('put'),
      'faults',
      faultsDuringBackup,
    );
    expect(faultsDuringBackup).toBeGreaterThanOrEqual(3);

    // The check and the restore read through the same faults.
    const forCheck = await Vault.open(backend, { kind: 'passphrase', passphrase: TEST_PASSPHRASE });
    const report = await checkVault(forCheck, { readDataFraction: 1 });
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.stats.packsRead).toBe(report.stats.packs);
    expect(report.stats.packs).toBeGreaterThan(5);

    const target = join(dir.path, 'out');
    const errors: string[] = [];
    await new Restorer(await reopenTestVault(backend), point, {
      target,
      onError: (path, error) => errors.push(`${path}: ${String(error)}`),
    }).run();
    expect(errors).toEqual([]);
    for (const [rel, content] of Object.entries(TREE)) {
      const restored = await readFile(join(target, src, rel));
      expect(restored.equals(content), rel).toBe(true);
    }

    expect(faulty.faultCount('fail-transient')).toBeGreaterThan(faultsDuringBackup);
    expect(backend.counters.retries).toBe(faulty.faultCount('fail-transient'));
    expect(memory.objects().size).toBeGreaterThan(report.stats.packs);
  });

  it('fails with BACKEND_TRANSIENT without the retrying stack', async () => {
    const { faulty } = faultyMemoryStack({ failureRate: 0.1, seed: 2024 });
    const backup = (async () => backupPaths(await makeTestVault(faulty, CONFIG), [src]))();
    expect(await failureCode(backup)).toBe('BACKEND_TRANSIENT');
    expect(faulty.faultCount('fail-transient')).toBeGreaterThan(0);
  });
});
