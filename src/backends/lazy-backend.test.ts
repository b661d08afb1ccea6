import { describe, expect, it } from 'vitest';
import { collect } from '../core/index.js';
import { AzureBlobBackend } from './azure-blob-backend.js';
import type { Backend } from './backend.js';
import { describeBackendConformance } from './backend-conformance.testkit.js';
import { LazyBackend, lazyAzureBackend, lazyS3Backend } from './lazy-backend.js';
import { MemoryBackend } from './memory-backend.js';
import { S3Backend } from './s3-backend.js';

const MEMORY_CAPABILITIES = new MemoryBackend().capabilities;

/** A lazy backend over `inner`, counting how often it was loaded. */
function lazyOver(inner: Backend): { backend: LazyBackend; loads: () => number } {
  let loads = 0;
  const backend = new LazyBackend(inner.location, inner.capabilities, async () => {
    loads += 1;
    return inner;
  });
  return { backend, loads: () => loads };
}

/** What `fn` throws, synchronously. */
function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describeBackendConformance('LazyBackend over MemoryBackend', async () => ({
  backend: lazyOver(new MemoryBackend()).backend,
  cleanup: async () => {},
}));

describe('LazyBackend', () => {
  it('loads its backend once, on the first operation, and shares it between concurrent ones', async () => {
    const inner = new MemoryBackend('lazy');
    const { backend, loads } = lazyOver(inner);
    expect(backend.location).toBe('memory:lazy');
    expect(backend.capabilities).toEqual(MEMORY_CAPABILITIES);
    expect(loads()).toBe(0);
    await Promise.all([backend.put('a', Buffer.from('1')), backend.put('b', Buffer.from('2'))]);
    expect(await collect(backend.list(''))).toHaveLength(2);
    expect(loads()).toBe(1);
  });

  it('closes without loading when it was never used', async () => {
    const { backend, loads } = lazyOver(new MemoryBackend());
    await backend.close();
    expect(loads()).toBe(0);
  });

  it('fails every operation with the error of a failed load, and closes quietly', async () => {
    const failure = new Error('no such module');
    const backend = new LazyBackend('memory:x', MEMORY_CAPABILITIES, () => Promise.reject(failure));
    await expect(backend.get('a')).rejects.toBe(failure);
    await expect(collect(backend.list(''))).rejects.toBe(failure);
    await expect(backend.close()).resolves.toBeUndefined();
  });

  it('refuses to lock objects when its backend cannot', async () => {
    const { backend } = lazyOver(new MemoryBackend());
    await expect(
      backend.extendRetention('a', Date.now(), { mode: 'governance' }),
    ).rejects.toMatchObject({ code: 'INTERNAL' });
  });
});

describe('lazyS3Backend', () => {
  const env = { AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'never-shown' };

  it('announces the location and capabilities of the S3Backend it loads', async () => {
    for (const url of [
      's3://bucket-one',
      's3://bucket-one/vaults/main/',
      's3://bucket-one/v?endpoint=http://127.0.0.1:9000/&conditional-put=true&object-lock=true',
      's3://bucket-one/v?region=eu-west-1&path-style=false',
    ]) {
      const lazy = lazyS3Backend(url, env);
      const eager = S3Backend.fromUrl(url, env);
      expect(lazy.location).toBe(eager.location);
      expect(lazy.capabilities).toEqual(eager.capabilities);
      await Promise.all([lazy.close(), eager.close()]);
    }
  });

  it('refuses a malformed URL or half the keys when opened, as S3Backend.fromUrl does', () => {
    for (const [url, badEnv] of [
      ['s3://Bad_Bucket/v', env],
      ['s3://key:secret@bucket-one/v', env],
      ['s3://bucket-one/v?colour=blue', env],
      ['s3://bucket-one/v', { AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE' }],
    ] as const) {
      const lazy = thrownBy(() => lazyS3Backend(url, badEnv));
      expect(lazy).toMatchObject({ code: 'USAGE_INVALID' });
      expect(lazy).toEqual(thrownBy(() => S3Backend.fromUrl(url, badEnv)));
    }
  });
});

describe('lazyAzureBackend', () => {
  const env = { AZURE_STORAGE_KEY: Buffer.from('never-shown').toString('base64') };

  it('announces the location and capabilities of the AzureBlobBackend it loads', async () => {
    for (const url of ['azure://acct1/backups', 'AZURE://acct1/my-backups/host1/vault/']) {
      const lazy = lazyAzureBackend(url, env);
      const eager = AzureBlobBackend.fromUrl(url, env);
      expect(lazy.location).toBe(eager.location);
      expect(lazy.capabilities).toEqual(eager.capabilities);
      await Promise.all([lazy.close(), eager.close()]);
    }
  });

  it('refuses a malformed URL when opened, as AzureBlobBackend.fromUrl does', () => {
    for (const url of [
      'azure://acct1',
      'azure://user:key@acct1/backups',
      'azure://acct1/b?sig=x',
    ]) {
      const lazy = thrownBy(() => lazyAzureBackend(url, env));
      expect(lazy).toMatchObject({ code: 'USAGE_INVALID' });
      expect(lazy).toEqual(thrownBy(() => AzureBlobBackend.fromUrl(url, env)));
    }
  });

  it('reports missing credentials on the first operation, with the same error', async () => {
    const lazy = lazyAzureBackend('azure://acct1/backups', {});
    const eager = thrownBy(() => AzureBlobBackend.fromUrl('azure://acct1/backups', {}));
    expect(eager).toMatchObject({ code: 'USAGE_INVALID' });
    await expect(lazy.stat('config')).rejects.toEqual(eager);
  });

  it('reads the environment as it was when opened', async () => {
    const changing: NodeJS.ProcessEnv = {};
    const lazy = lazyAzureBackend('azure://acct1/backups', changing);
    changing['AZURE_STORAGE_KEY'] = env.AZURE_STORAGE_KEY;
    await expect(lazy.stat('config')).rejects.toMatchObject({ code: 'USAGE_INVALID' });
  });
});
