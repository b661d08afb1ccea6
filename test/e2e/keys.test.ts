/**
 * Key slots: adding passphrases and key files, opening the vault with each, removing them, and
 * the refusals that keep a vault openable — with the vault on local disk, in Azure Blob
 * (Azurite) and in S3 (s3rver).
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  STORE_KINDS,
  startStore,
  type TestStore,
} from '../../src/backends/object-stores.testkit.js';
import {
  killStartedProcesses,
  describeRun,
  restoredPath,
  Sandbox,
  seededBytes,
  writeTree,
  type RunEnv,
} from './cli.testkit.js';
import { diffTrees, snapshotTree } from './tree.testkit.js';

interface KeyRow {
  readonly id: string;
  readonly kind: 'passphrase' | 'keyfile';
  readonly label: string;
  readonly current: boolean;
}

describe.each(STORE_KINDS)('key management (vault: %s)', (kind) => {
  let store: TestStore | undefined;
  let sb: Sandbox;
  let src: string;
  const second: RunEnv = { HOLDFAST_PASSWORD: 'a second passphrase' };

  async function keys(env: RunEnv = {}, extra: string[] = []): Promise<KeyRow[]> {
    return sb.json<KeyRow[]>([...extra, 'key', 'list'], 0, env);
  }

  beforeAll(async () => {
    store = await startStore(kind, 'keys');
    sb = await Sandbox.create(`keys-${kind}`, { store });
    await sb.init();
    src = sb.path('src');
    writeTree(src, { 'a.txt': 'alpha\n', 'b/c.bin': seededBytes(100_000, 'keys') });
    await sb.backup([src]);
  }, 120_000);

  afterAll(async () => {
    killStartedProcesses();
    await sb?.cleanup();
    await store?.stop();
  });

  it('lists the initial passphrase slot as the current one', async () => {
    const rows = await keys();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ kind: 'passphrase', current: true });
  });

  it('adds a passphrase that opens the vault, and the first one still does', async () => {
    const added = await sb.json<{ id: string }>(['key', 'add', '--label', 'second'], 0, {
      HOLDFAST_NEW_PASSWORD: second['HOLDFAST_PASSWORD'],
    });
    const rows = await keys(second);
    expect(rows).toHaveLength(2);
    expect(rows.find((r) => r.id === added.id)).toMatchObject({
      kind: 'passphrase',
      label: 'second',
      current: true,
    });
    expect((await sb.cli(['points'], second)).code).toBe(0);
    expect((await sb.cli(['points'])).code).toBe(0);
  });

  it('adds a key file that backs up and restores without any passphrase', async () => {
    const keyFile = sb.path('vault.key');
    await sb.ok(['key', 'add', '--new-key-file', keyFile, '--label', 'offline']);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(Buffer.from(readFileSync(keyFile, 'utf8').trim(), 'base64')).toHaveLength(32);

    const noPassphrase: RunEnv = { HOLDFAST_PASSWORD: undefined };
    const rows = await keys(noPassphrase, ['--key-file', keyFile]);
    expect(rows).toHaveLength(3);
    expect(rows.find((r) => r.current)).toMatchObject({ kind: 'keyfile', label: 'offline' });

    writeFileSync(`${src}/added-with-key-file.txt`, 'x\n');
    const backup = ['--key-file', keyFile, 'backup', src];
    expect((await sb.cli(backup, noPassphrase)).code).toBe(0);
    const target = sb.path('restored');
    const restore = ['--key-file', keyFile, 'restore', 'latest', '--target', target];
    const r = await sb.cli(restore, noPassphrase);
    expect(r.code, describeRun(restore, r)).toBe(0);
    expect(diffTrees(snapshotTree(src), snapshotTree(restoredPath(target, src)))).toEqual([]);
  }, 60_000);

  it('refuses a key file that does not open the vault, and one that does not exist', async () => {
    const wrong = sb.path('wrong.key');
    writeFileSync(wrong, seededBytes(32, 'wrong key').toString('base64') + '\n');
    const r = await sb.cli(['--key-file', wrong, 'points'], { HOLDFAST_PASSWORD: undefined });
    expect(r.code, describeRun(['points'], r)).toBe(1);
    expect(r.stderr).toMatch(/key file/i);
    expect(r.stderr).toContain('VAULT_WRONG_KEY');

    const missing = sb.path('missing.key');
    const m = await sb.cli(['--key-file', missing, 'points']);
    expect(m.code, describeRun(['points'], m)).not.toBe(0);
    expect(m.stderr).toContain(missing);
  });

  it('does not overwrite an existing file with a new key file', async () => {
    const existing = sb.path('precious.txt');
    writeFileSync(existing, 'keep me\n');
    const r = await sb.cli(['key', 'add', '--new-key-file', existing]);
    expect(r.code).not.toBe(0);
    expect(readFileSync(existing, 'utf8')).toBe('keep me\n');
    expect(await keys()).toHaveLength(3);
  });

  it('removes a slot by id prefix; its passphrase then no longer opens the vault', async () => {
    const rows = await keys(second);
    const slot = rows.find((r) => r.current)!;
    // Opened with the first passphrase, so the second one's slot is not in use.
    await sb.ok(['key', 'remove', slot.id.slice(0, 10)]);
    expect((await keys()).map((r) => r.id)).not.toContain(slot.id);
    const r = await sb.cli(['points'], second);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('VAULT_WRONG_KEY');
  });

  it('refuses to remove the slot that opened the vault', async () => {
    const current = (await keys()).find((r) => r.current)!;
    const r = await sb.cli(['key', 'remove', current.id]);
    expect(r.code, describeRun(['key', 'remove'], r)).not.toBe(0);
    expect(r.stderr).toMatch(/opened|in use/i);
    expect((await keys()).map((k) => k.id)).toContain(current.id);
  });

  it('refuses to remove the last slot', async () => {
    const keyFile = sb.path('vault.key');
    const viaKeyFile: RunEnv = { HOLDFAST_PASSWORD: undefined };
    const passphraseSlot = (await keys()).find((r) => r.current)!;
    // With the key file, the passphrase slot can go; then the key file's slot is the last one.
    await sb.ok(['--key-file', keyFile, 'key', 'remove', passphraseSlot.id], 0, viaKeyFile);
    const left = await keys(viaKeyFile, ['--key-file', keyFile]);
    expect(left).toHaveLength(1);
    const r = await sb.cli(['--key-file', keyFile, 'key', 'remove', left[0]!.id], viaKeyFile);
    expect(r.code, describeRun(['key', 'remove'], r)).toBe(1);
    expect(r.stderr).toContain('VAULT_LAST_KEY');
    expect(await keys(viaKeyFile, ['--key-file', keyFile])).toHaveLength(1);
    expect((await sb.cli(['points'])).code).toBe(1);
  });

  it('creates a vault that only a new key file opens', async () => {
    const vault = sb.location('keyfile-vault');
    const keyFile = sb.path('init.key');
    const env: RunEnv = { HOLDFAST_VAULT: vault, HOLDFAST_PASSWORD: undefined };
    await sb.ok(['init', '--new-key-file', keyFile], 0, env);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(await sb.objects(vault).list()).toContain('holdfast.json');
    expect((await sb.cli(['--key-file', keyFile, 'points'], env)).code).toBe(0);
    const r = await sb.cli(['points'], { HOLDFAST_VAULT: vault });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('VAULT_WRONG_KEY');
  });

  it('keeps the compression level chosen at init for every backup', async () => {
    const text = sb.path('compressible');
    // Under the chunker's 512 KiB minimum, so the file is one chunk in both vaults: chunk
    // boundaries are keyed per vault, and a file cut into more chunks compresses worse, which
    // made the comparison depend on the two vaults' keys.
    const lines = Array.from(
      { length: 12_000 },
      (_, i) => `{"seq":${i},"user":"u${(i * 7919) % 1000}","ok":${i % 3 === 0}}`,
    );
    writeTree(text, { 'log.jsonl': lines.join('\n') });
    const stored: number[] = [];
    for (const level of ['1', '19']) {
      const env: RunEnv = { HOLDFAST_VAULT: sb.location(`level-${level}`) };
      await sb.ok(['init', '--compression', level], 0, env);
      const summary = await sb.json<{ storedBytes: number; bytes: number }>(
        ['backup', text],
        0,
        env,
      );
      expect(summary.storedBytes).toBeLessThan(summary.bytes / 3);
      stored.push(summary.storedBytes);
    }
    expect(stored[1]).toBeLessThan(stored[0]! * 0.9);
  });
});
