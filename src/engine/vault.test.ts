import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { MemoryBackend } from '../backends/index.js';
import { ManualClock } from '../core/index.js';
import { sealObject } from './codec.js';
import { TEST_PASSPHRASE, makeTestVault } from './engine.testkit.js';
import { ExcludeMatcher, parseExcludeFile } from './exclude.js';
import { acquireLock, LOCK_STALE_MS, listLocks } from './locks.js';
import { Vault } from './vault.js';

const fastScrypt = { scrypt: { N: 1024, r: 8, p: 1 } };

describe('Vault', () => {
  it('opens with the passphrase, refuses a wrong one, and refuses a second init', async () => {
    const backend = new MemoryBackend();
    await makeTestVault(backend);
    await expect(
      Vault.open(backend, { kind: 'passphrase', passphrase: TEST_PASSPHRASE }),
    ).resolves.toBeInstanceOf(Vault);
    await expect(
      Vault.open(backend, { kind: 'passphrase', passphrase: 'nope' }),
    ).rejects.toMatchObject({ code: 'VAULT_WRONG_KEY' });
    await expect(makeTestVault(backend)).rejects.toMatchObject({ code: 'VAULT_EXISTS' });
  });

  it('says there is no vault, or that its version is unknown', async () => {
    const backend = new MemoryBackend();
    await expect(
      Vault.open(backend, { kind: 'passphrase', passphrase: 'x' }),
    ).rejects.toMatchObject({ code: 'VAULT_NOT_FOUND' });
    const vault = await makeTestVault(backend);
    await backend.put(
      'holdfast.json',
      Buffer.from(JSON.stringify({ format: 'holdfast-vault', version: 99, id: vault.id })),
    );
    await expect(
      Vault.open(backend, { kind: 'passphrase', passphrase: TEST_PASSPHRASE }),
    ).rejects.toMatchObject({ code: 'VAULT_VERSION_UNSUPPORTED' });
  });

  it('adds key slots, opens with each, and never removes the last or the current one', async () => {
    const backend = new MemoryBackend();
    const vault = await Vault.init(
      backend,
      { kind: 'passphrase', passphrase: 'first' },
      fastScrypt,
    );
    const secret = Buffer.alloc(32, 9);
    const added = await vault.addKey({ kind: 'keyfile', secret }, 'backup key');
    const byFile = await Vault.open(backend, { kind: 'keyfile', secret });
    expect(byFile.keySlotName).toBe(added);
    expect(byFile.keys.encryption.equals(vault.keys.encryption)).toBe(true);
    await expect(vault.removeKey(vault.keySlotName)).rejects.toMatchObject({
      code: 'USAGE_INVALID',
    });
    await byFile.removeKey(vault.keySlotName);
    await expect(
      Vault.open(backend, { kind: 'passphrase', passphrase: 'first' }),
    ).rejects.toMatchObject({ code: 'VAULT_WRONG_KEY' });
    await expect(byFile.removeKey(added)).rejects.toMatchObject({ code: 'VAULT_LAST_KEY' });
  });
});

describe('locks', () => {
  it('an exclusive lock conflicts with a shared one; stale locks are cleared', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const backend = new MemoryBackend();
    const vault = await Vault.init(
      backend,
      { kind: 'passphrase', passphrase: 'p' },
      { ...fastScrypt, clock },
    );
    const shared = await acquireLock(vault, { exclusive: false, purpose: 'backup' });
    const second = await acquireLock(vault, { exclusive: false, purpose: 'backup' });
    await expect(acquireLock(vault, { exclusive: true, purpose: 'prune' })).rejects.toMatchObject({
      code: 'VAULT_LOCKED',
    });
    await shared.release();
    await second.release();
    const exclusive = await acquireLock(vault, { exclusive: true, purpose: 'prune' });
    await expect(acquireLock(vault, { exclusive: false, purpose: 'backup' })).rejects.toMatchObject(
      { code: 'VAULT_LOCKED' },
    );
    await exclusive.release();

    // A lock of a process that no longer exists on this host is stale at once.
    const dead = {
      host: hostname(),
      pid: 2 ** 22 + 12345,
      exclusive: true,
      purpose: 'prune',
      created: clock.now(),
      refreshed: clock.now(),
    };
    await backend.put('locks/dead', sealObject(vault.keys.encryption, 'lock', dead));
    expect(await listLocks(vault)).toEqual([]);
    // A lock of another host is stale only when not refreshed for LOCK_STALE_MS.
    const remote = { ...dead, host: 'elsewhere', pid: 1 };
    await backend.put('locks/remote', sealObject(vault.keys.encryption, 'lock', remote));
    expect((await listLocks(vault)).length).toBe(1);
    clock.advance(LOCK_STALE_MS + 1);
    expect(await listLocks(vault)).toEqual([]);
  });
});

describe('ExcludeMatcher', () => {
  it('matches names at any depth and anchored or trailing paths', () => {
    const m = new ExcludeMatcher([
      'node_modules',
      '*.tmp',
      '/srv/cache',
      'logs/*.log',
      '**/build/**',
      'file[0-9]',
    ]);
    expect(m.matches('/a/b/node_modules', 'node_modules')).toBe(true);
    expect(m.matches('/a/x.tmp', 'x.tmp')).toBe(true);
    expect(m.matches('/srv/cache', 'cache')).toBe(true);
    expect(m.matches('/other/srv/cache', 'cache')).toBe(false);
    expect(m.matches('/var/logs/a.log', 'a.log')).toBe(true);
    expect(m.matches('/var/logs/sub/a.log', 'a.log')).toBe(false);
    expect(m.matches('/p/build/x/y', 'y')).toBe(true);
    expect(m.matches('/p/file7', 'file7')).toBe(true);
    expect(m.matches('/p/fileA', 'fileA')).toBe(false);
    expect(parseExcludeFile('# comment\n\n*.o\r\n  \nbuild/\n')).toEqual(['*.o', 'build/']);
  });
});
