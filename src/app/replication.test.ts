import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalBackend, MemoryBackend, type OpOptions } from '../backends/index.js';
import { ManualClock } from '../core/index.js';
import { replicateObjects, replicateUntilCaughtUp } from './replication.js';
import { expectFailure } from '../core/failure.testkit.js';

const clock = new ManualClock(Date.UTC(2026, 0, 5));
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A small vault-shaped object set. */
async function filled(backend: MemoryBackend, extra: string[] = []): Promise<MemoryBackend> {
  for (const name of ['holdfast.json', 'config', 'keys/k1', 'packs/aa/p1', 'index/i1', 'points/a'])
    await backend.put(name, Buffer.from(name));
  for (const name of extra) await backend.put(name, Buffer.from(name));
  return backend;
}

function names(backend: MemoryBackend): string[] {
  return [...backend.objects()].map(([name]) => name).sort();
}

describe('replication', () => {
  it('refuses to mirror a primary that holds no vault, leaving the secondary whole', async () => {
    const secondary = await filled(new MemoryBackend());
    const before = names(secondary);
    const emptied = new MemoryBackend();
    expect((await expectFailure(replicateObjects(emptied, secondary))).code).toBe(
      'VAULT_NOT_FOUND',
    );
    const dir = mkdtempSync(join(tmpdir(), 'holdfast-lost-'));
    dirs.push(dir);
    const gone = new LocalBackend(join(dir, 'not-there'));
    const error = await expectFailure(replicateObjects(gone, secondary));
    expect(['VAULT_NOT_FOUND', 'BACKEND_NOT_FOUND']).toContain(error.code);
    expect(error.message).not.toMatch(/undefined/);
    expect(names(secondary)).toEqual(before);
  });

  it('passes again when objects land on the primary during a pass', async () => {
    const primary = new LandingBackend(['points/b', 'packs/bb/p2']);
    await filled(primary);
    const secondary = new MemoryBackend();
    const done = await replicateUntilCaughtUp(primary, secondary, { deletions: true, clock });
    expect(done.passes).toBe(2);
    expect(names(secondary)).toEqual(names(primary));
  });

  it('gives up for now (transient) when the primary keeps changing', async () => {
    const primary = new LandingBackend(Array.from({ length: 100 }, (_, i) => `points/n${i}`));
    await filled(primary);
    const error = await expectFailure(
      replicateUntilCaughtUp(primary, new MemoryBackend(), { deletions: true, clock }),
    );
    expect(error.code).toBe('BACKEND_TRANSIENT');
  });
});

/** A primary where, at each read, one more object arrives (a backup finishing meanwhile). */
class LandingBackend extends MemoryBackend {
  constructor(private readonly arriving: string[]) {
    super();
  }

  override async get(name: string, options?: OpOptions): Promise<Buffer> {
    const next = this.arriving.shift();
    if (next !== undefined) await this.put(next, Buffer.from(next));
    return super.get(name, options);
  }
}
