import { createServer, type Server, type Socket } from 'node:net';
import {
  BlobServiceClient,
  ContainerSASPermissions,
  RestError,
  StorageSharedKeyCredential,
  generateBlobSASQueryParameters,
} from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HoldfastError, collect } from '../core/index.js';
import type { Backend } from './backend.js';
import {
  describeBackendConformance,
  failureCode,
  seededBytes,
} from './backend-conformance.testkit.js';
import { AzureBlobBackend, type AzureBlobFromUrlOptions } from './azure-blob-backend.js';
import { classifyAzureError } from './azure-errors.js';
import { parseAzureUrl } from './azure-location.js';
import {
  AZURITE_ACCOUNT,
  AZURITE_KEY,
  azuriteConnectionString,
  freePort,
  startAzurite,
  type Azurite,
} from './azurite.testkit.js';

// Everything runs against a real Azurite blob service that this file starts on 127.0.0.1.

/** A valid base64 key that is not the development account's. */
const WRONG_KEY = Buffer.alloc(64, 7).toString('base64');

/** Short SDK retries so failures show in well under a second. */
const QUICK: AzureBlobFromUrlOptions = {
  retry: { maxTries: 2, retryDelayMs: 50, maxRetryDelayMs: 100 },
};

let azurite: Azurite;
let service: BlobServiceClient;
let containers = 0;

beforeAll(async () => {
  azurite = await startAzurite();
  service = BlobServiceClient.fromConnectionString(azurite.connectionString);
});

afterAll(async () => {
  await azurite?.stop();
});

/** Creates a fresh container and returns its name. */
async function freshContainer(): Promise<string> {
  containers += 1;
  const name = `c${containers}-${process.pid}`;
  await service.getContainerClient(name).create();
  return name;
}

function connectionEnv(connectionString = azurite.connectionString): NodeJS.ProcessEnv {
  return { AZURE_STORAGE_CONNECTION_STRING: connectionString };
}

/** The error `promise` rejects with; fails the test if it resolves. */
async function failure(promise: Promise<unknown>): Promise<HoldfastError> {
  const error = await promise.then(
    () => expect.fail('expected the operation to fail'),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(HoldfastError);
  return error as HoldfastError;
}

/** Every message along the cause chain, for checking that no secret leaks anywhere. */
function messageChain(error: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = error; e instanceof Error; e = e.cause) parts.push(e.message);
  return parts.join('\n');
}

describeBackendConformance('AzureBlobBackend on Azurite', async () => {
  const container = await freshContainer();
  // A small page size, so listing thousands of objects crosses many continuation tokens.
  const backend = AzureBlobBackend.fromUrl(
    `azure://${AZURITE_ACCOUNT}/${container}/vaults/v1`,
    connectionEnv(),
    { ...QUICK, listPageSize: 500 },
  );
  return {
    backend,
    cleanup: async () => {
      await service.getContainerClient(container).delete();
    },
  };
});

describe('AzureBlobBackend on Azurite', () => {
  it('stores objects as block blobs under the prefix, and lists only those', async () => {
    const container = await freshContainer();
    const client = service.getContainerClient(container);
    await client.getBlockBlobClient('vaults/v1x/other').uploadData(Buffer.from('not ours'));
    await client.getBlockBlobClient('vaults/v1/dir/').uploadData(Buffer.alloc(0));
    const backend = AzureBlobBackend.fromUrl(
      `azure://${AZURITE_ACCOUNT}/${container}/vaults/v1/`,
      connectionEnv(),
    );
    expect(backend.location).toBe(`azure://${AZURITE_ACCOUNT}/${container}/vaults/v1`);
    await backend.put('packs/ab/ab01', Buffer.from('pack'));
    const blob = client.getBlockBlobClient('vaults/v1/packs/ab/ab01');
    expect((await blob.downloadToBuffer()).toString()).toBe('pack');
    // The folder marker "dir/" is not a valid object name, and "v1x/" is outside the prefix.
    expect(await collect(backend.list(''))).toEqual([{ name: 'packs/ab/ab01', size: 4 }]);
    // A view into a larger buffer stores just the view's bytes.
    const pool = Buffer.from('....view....');
    await backend.put('view', pool.subarray(4, 8));
    expect((await backend.get('view')).toString()).toBe('view');
  });

  it('stages large objects in blocks, atomically and conditionally', async () => {
    const container = await freshContainer();
    const backend = AzureBlobBackend.fromUrl(
      `azure://${AZURITE_ACCOUNT}/${container}`,
      connectionEnv(),
      { singleShotBytes: 1024 * 1024, blockBytes: 1024 * 1024 },
    );
    const data = seededBytes(11, 3 * 1024 * 1024 + 5);
    await backend.put('packs/staged', data, { ifNotExists: true });
    const blocks = await service
      .getContainerClient(container)
      .getBlockBlobClient('packs/staged')
      .getBlockList('committed');
    expect(blocks.committedBlocks).toHaveLength(4);
    expect((await backend.get('packs/staged')).equals(data)).toBe(true);
    const again = backend.put('packs/staged', seededBytes(12, 2 * 1024 * 1024), {
      ifNotExists: true,
    });
    expect(await failureCode(again)).toBe('BACKEND_EXISTS');
    expect((await backend.get('packs/staged')).equals(data)).toBe(true);
  });

  it('writes nothing when a staged put is cancelled between blocks', async () => {
    const container = await freshContainer();
    const backend = AzureBlobBackend.fromUrl(
      `azure://${AZURITE_ACCOUNT}/${container}`,
      connectionEnv(),
      { singleShotBytes: 256 * 1024, blockBytes: 256 * 1024, uploadConcurrency: 1 },
    );
    const blob = service.getContainerClient(container).getBlockBlobClient('packs/cancelled');
    const controller = new AbortController();
    const put = backend.put('packs/cancelled', seededBytes(13, 16 * 1024 * 1024), {
      signal: controller.signal,
    });
    // Abort as soon as the service holds the first staged block, before any commit.
    for (;;) {
      const list = await blob.getBlockList('uncommitted').catch(() => undefined);
      if ((list?.uncommittedBlocks?.length ?? 0) > 0) break;
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    controller.abort();
    expect(await failureCode(put)).toBe('CANCELLED');
    expect(await failureCode(backend.stat('packs/cancelled'))).toBe('BACKEND_NOT_FOUND');
    expect(await collect(backend.list(''))).toEqual([]);
  });

  it('opens with a shared key and a blob endpoint from the environment', async () => {
    const container = await freshContainer();
    const env = {
      AZURE_STORAGE_KEY: AZURITE_KEY,
      AZURE_STORAGE_BLOB_ENDPOINT: azurite.blobEndpoint,
    };
    const backend = AzureBlobBackend.fromUrl(`azure://${AZURITE_ACCOUNT}/${container}/p`, env);
    await backend.put('config', Buffer.from('key auth'));
    expect((await backend.get('config')).toString()).toBe('key auth');
  });

  it('opens with a SAS token, and a read-only one cannot write', async () => {
    const container = await freshContainer();
    const sas = (permissions: string): string =>
      generateBlobSASQueryParameters(
        {
          containerName: container,
          permissions: ContainerSASPermissions.parse(permissions),
          expiresOn: new Date(Date.now() + 3_600_000),
        },
        new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY),
      ).toString();
    const url = `azure://${AZURITE_ACCOUNT}/${container}`;
    const writable = sas('racwdl');
    const env = {
      AZURE_STORAGE_SAS_TOKEN: `?${writable}`,
      AZURE_STORAGE_BLOB_ENDPOINT: azurite.blobEndpoint,
    };
    const backend = AzureBlobBackend.fromUrl(url, env);
    await backend.put('keys/k1', Buffer.from('sas'));
    expect(await collect(backend.list('keys/'))).toEqual([{ name: 'keys/k1', size: 3 }]);
    const readOnly = sas('rl');
    const reader = AzureBlobBackend.fromUrl(url, {
      AZURE_STORAGE_SAS_TOKEN: readOnly,
      AZURE_STORAGE_BLOB_ENDPOINT: azurite.blobEndpoint,
    });
    expect((await reader.get('keys/k1')).toString()).toBe('sas');
    const error = await failure(reader.put('keys/k2', Buffer.from('x')));
    expect(error.code).toBe('BACKEND_PERMISSION');
    const signature = new URLSearchParams(readOnly).get('sig')!;
    for (const text of [error.message, reader.location, messageChain(error)]) {
      expect(text).not.toContain(signature);
      expect(text).not.toContain(encodeURIComponent(signature));
    }
  });

  it('prefers the connection string, then the key, then the SAS token', async () => {
    const container = await freshContainer();
    const url = `azure://${AZURITE_ACCOUNT}/${container}`;
    const endpoint = { AZURE_STORAGE_BLOB_ENDPOINT: azurite.blobEndpoint };
    const sas = generateBlobSASQueryParameters(
      {
        containerName: container,
        permissions: ContainerSASPermissions.parse('racwdl'),
        expiresOn: new Date(Date.now() + 3_600_000),
      },
      new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY),
    ).toString();
    const stringFirst = AzureBlobBackend.fromUrl(url, {
      ...connectionEnv(),
      ...endpoint,
      AZURE_STORAGE_KEY: WRONG_KEY,
    });
    await stringFirst.put('a', Buffer.from('connection string used'));
    const keyFirst = { ...endpoint, AZURE_STORAGE_KEY: WRONG_KEY, AZURE_STORAGE_SAS_TOKEN: sas };
    const error = await failure(AzureBlobBackend.fromUrl(url, keyFirst, QUICK).get('a'));
    expect(error.code).toBe('BACKEND_PERMISSION');
    const sasOnly = AzureBlobBackend.fromUrl(url, { ...endpoint, AZURE_STORAGE_SAS_TOKEN: sas });
    expect((await sasOnly.get('a')).toString()).toBe('connection string used');
  });

  it('reports a wrong key as BACKEND_PERMISSION without the key or connection string', async () => {
    const container = await freshContainer();
    const connectionString = azuriteConnectionString(azurite.blobEndpoint, WRONG_KEY);
    const backend = AzureBlobBackend.fromUrl(
      `azure://${AZURITE_ACCOUNT}/${container}/v`,
      connectionEnv(connectionString),
      QUICK,
    );
    const errors = [
      await failure(backend.put('config', Buffer.from('x'))),
      await failure(backend.put('config', Buffer.from('x'), { ifNotExists: true })),
      await failure(backend.get('config')),
      await failure(backend.getRange('config', 0, 10)),
      await failure(backend.stat('config')),
      await failure(backend.delete('config')),
      await failure(collect(backend.list(''))),
    ];
    for (const error of errors) {
      expect(error.code).toBe('BACKEND_PERMISSION');
      expect(error.message).toContain(backend.location);
      expect(error.message).toMatch(/account key|connection string|SAS/);
      for (const text of [error.message, messageChain(error), backend.location]) {
        expect(text).not.toContain(WRONG_KEY);
        expect(text).not.toContain(connectionString);
      }
    }
    expect(errors[0]!.message).toContain('"config"');
  });

  it('reports a missing container as BACKEND_NOT_FOUND, and creates it when asked', async () => {
    containers += 1;
    const container = `missing${containers}-${process.pid}`;
    const url = `azure://${AZURITE_ACCOUNT}/${container}/v`;
    const backend = AzureBlobBackend.fromUrl(url, connectionEnv(), QUICK);
    for (const attempt of [
      () => backend.put('config', Buffer.from('x')),
      () => backend.get('config'),
      () => collect(backend.list('')),
      () => backend.delete('config'),
    ]) {
      const error = await failure(attempt());
      expect(error.code).toBe('BACKEND_NOT_FOUND');
      expect(error.message).toContain(url);
    }
    const listError = await failure(collect(backend.list('')));
    expect(listError.message).toContain('container');
    expect(listError.message).toContain('create');
    expect(await service.getContainerClient(container).exists()).toBe(false);
    const creating = AzureBlobBackend.fromUrl(url, connectionEnv(), {
      ...QUICK,
      createContainer: true,
    });
    await creating.put('config', Buffer.from('made'), { ifNotExists: true });
    expect((await backend.get('config')).toString()).toBe('made');
  });

  it('fails BACKEND_TRANSIENT, without hanging, when Azurite stops mid-test', async () => {
    const own = await startAzurite();
    try {
      await BlobServiceClient.fromConnectionString(own.connectionString)
        .getContainerClient('stopping')
        .create();
      const backend = AzureBlobBackend.fromUrl(
        `azure://${AZURITE_ACCOUNT}/stopping`,
        connectionEnv(own.connectionString),
        { ...QUICK, timeoutMs: 5000 },
      );
      await backend.put('before', Buffer.from('x'));
      // Killed while a large put is in flight, then every later call finds nobody listening.
      // failure() handles the rejection at once, so it cannot surface as unhandled meanwhile.
      const inFlight = failure(backend.put('packs/big', seededBytes(14, 24 * 1024 * 1024)));
      await new Promise((resolve) => setImmediate(resolve));
      await own.kill();
      const started = Date.now();
      const attempts: Array<() => Promise<HoldfastError>> = [
        () => inFlight,
        () => failure(backend.get('before')),
        () => failure(backend.put('after', Buffer.from('y'))),
        () => failure(backend.stat('before')),
        () => failure(collect(backend.list(''))),
      ];
      for (const attempt of attempts) {
        const error = await attempt();
        expect(error.code).toBe('BACKEND_TRANSIENT');
        expect(error.message).toContain(backend.location);
      }
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      await own.stop();
    }
  });
});

describe('AzureBlobBackend against a server that never answers', () => {
  let server: Server;
  let port: number;
  const sockets = new Set<Socket>();

  beforeAll(async () => {
    port = await freePort();
    server = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.resume();
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
  });

  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  it('gives up after its time limit with BACKEND_TRANSIENT, and CANCELLED wins over it', async () => {
    const endpoint = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
    const backend: Backend = AzureBlobBackend.fromUrl(
      `azure://${AZURITE_ACCOUNT}/silent`,
      connectionEnv(azuriteConnectionString(endpoint)),
      { ...QUICK, timeoutMs: 300 },
    );
    const started = Date.now();
    const error = await failure(backend.get('config'));
    expect(error.code).toBe('BACKEND_TRANSIENT');
    expect(error.message).toMatch(
      /^Timed out reading "config" in azure:\/\/devstoreaccount1\/silent/,
    );
    expect(Date.now() - started).toBeLessThan(3000);
    const controller = new AbortController();
    const put = backend.put('config', Buffer.from('x'), { signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    expect(await failureCode(put)).toBe('CANCELLED');
  });
});

describe('classifyAzureError', () => {
  const context = { name: 'packs/ab/ab01', location: 'azure://acct/cont/v' } as const;
  const rest = (statusCode: number | undefined, code: string | undefined): RestError =>
    new RestError('service text', {
      ...(statusCode === undefined ? {} : { statusCode }),
      ...(code === undefined ? {} : { code }),
    });
  const cases: Array<[number | undefined, string | undefined, string, string]> = [
    [404, 'BlobNotFound', 'read', 'BACKEND_NOT_FOUND'],
    [404, undefined, 'stat', 'BACKEND_NOT_FOUND'],
    [404, 'ContainerNotFound', 'list', 'BACKEND_NOT_FOUND'],
    [404, 'BlobNotFound', 'delete', 'BACKEND_NOT_FOUND'],
    [409, 'BlobAlreadyExists', 'conditional-write', 'BACKEND_EXISTS'],
    [412, 'ConditionNotMet', 'conditional-write', 'BACKEND_EXISTS'],
    [409, 'LeaseIdMissing', 'conditional-write', 'BACKEND_IO'],
    [412, 'ConditionNotMet', 'read', 'BACKEND_TRANSIENT'],
    [403, 'AuthorizationFailure', 'write', 'BACKEND_PERMISSION'],
    [403, 'AuthenticationFailed', 'read', 'BACKEND_PERMISSION'],
    [403, undefined, 'stat', 'BACKEND_PERMISSION'],
    [500, 'InternalError', 'write', 'BACKEND_TRANSIENT'],
    [503, 'ServerBusy', 'read', 'BACKEND_TRANSIENT'],
    [500, 'OperationTimedOut', 'list', 'BACKEND_TRANSIENT'],
    [400, 'InvalidBlockList', 'write', 'BACKEND_TRANSIENT'],
    [undefined, 'ECONNREFUSED', 'read', 'BACKEND_TRANSIENT'],
    [undefined, 'ECONNRESET', 'write', 'BACKEND_TRANSIENT'],
    [undefined, 'REQUEST_SEND_ERROR', 'write', 'BACKEND_TRANSIENT'],
    [undefined, 'ENOTFOUND', 'read', 'BACKEND_IO'],
    [400, 'InvalidHeaderValue', 'write', 'BACKEND_IO'],
  ];

  it.each(cases)('maps %s %s while %s to %s, naming the object', (status, code, action, want) => {
    const cause = rest(status, code);
    const error = classifyAzureError(cause, { ...context, action: action as 'read' });
    expect(error.code).toBe(want);
    expect(error.cause).toBe(cause);
    expect(error.message).toContain('azure://acct/cont/v');
    if (code !== 'ContainerNotFound') expect(error.message).toContain('packs/ab/ab01');
    expect(error.message).not.toContain('service text');
  });

  it('reads the error code of a HEAD answer from its details', () => {
    const cause = Object.assign(rest(404, undefined), {
      details: { errorCode: 'ContainerNotFound' },
    });
    const error = classifyAzureError(cause, { ...context, action: 'stat' });
    expect(error.message).toContain('container');
  });

  it('puts cancellation first and reports a timeout as transient', () => {
    const cause = new Error('aborted');
    expect(classifyAzureError(cause, { ...context, action: 'read', cancelled: true }).code).toBe(
      'CANCELLED',
    );
    const late = classifyAzureError(cause, { ...context, action: 'write', timedOutAfterMs: 9000 });
    expect(late.code).toBe('BACKEND_TRANSIENT');
    expect(late.message).toContain('after 9 s');
    expect(classifyAzureError('odd', { ...context, action: 'read' }).code).toBe('BACKEND_IO');
  });
});

describe('AzureBlobBackend.fromUrl', () => {
  const env = { AZURE_STORAGE_KEY: AZURITE_KEY };

  it('parses account, container and prefix', () => {
    expect(parseAzureUrl('azure://acct1/backups')).toEqual({
      account: 'acct1',
      container: 'backups',
      prefix: '',
    });
    expect(parseAzureUrl('azure://acct1/backups/')).toMatchObject({ prefix: '' });
    expect(parseAzureUrl('AZURE://acct1/my-backups/host1/vault/')).toEqual({
      account: 'acct1',
      container: 'my-backups',
      prefix: 'host1/vault/',
    });
    const backend = AzureBlobBackend.fromUrl('azure://acct1/backups/host1/', env);
    expect(backend.location).toBe('azure://acct1/backups/host1');
    expect(backend.capabilities).toEqual({
      conditionalPut: true,
      rangeReads: true,
      consistentList: true,
      objectLock: false,
    });
  });

  it.each([
    ['s3://acct1/backups', 'azure://<account>/<container>'],
    ['azure://acct1', 'container'],
    ['azure:///backups', 'account'],
    ['azure://Acct1/backups', 'account'],
    ['azure://a/backups', 'account'],
    ['azure://acct1/ab', 'container'],
    ['azure://acct1/Backups', 'container'],
    ['azure://acct1/back--ups', 'container'],
    ['azure://acct1/-backups', 'container'],
    ['azure://acct1/backups//x', 'prefix'],
    ['azure://acct1/backups/a/../b', 'prefix'],
    ['azure://acct1/backups/.tmp-x', 'prefix'],
  ])('refuses %s with USAGE_INVALID about the %s', (url, about) => {
    let thrown: unknown;
    try {
      AzureBlobBackend.fromUrl(url, env);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toMatchObject({ code: 'USAGE_INVALID' });
    expect((thrown as Error).message).toContain(about);
    expect((thrown as Error).message).toContain('azure://<account>/<container>');
  });

  it('refuses credentials in the URL without repeating them', () => {
    const secret = 'sig=c2VjcmV0LXNpZ25hdHVyZQ%3D%3D';
    for (const url of [
      `azure://acct1/backups?sv=2024-01-01&${secret}`,
      `azure://acct1/backups/v?${secret}`,
      `azure://acct1:${AZURITE_KEY}@acct1/backups`,
      'azure://acct1/backups#token',
    ]) {
      let thrown: unknown;
      try {
        AzureBlobBackend.fromUrl(url, env);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toMatchObject({ code: 'USAGE_INVALID' });
      const message = (thrown as Error).message;
      expect(message).toContain('Credentials do not belong');
      expect(message).toContain('AZURE_STORAGE_SAS_TOKEN');
      expect(message).not.toContain('c2VjcmV0');
      expect(message).not.toContain(AZURITE_KEY);
    }
  });

  it('needs credentials from the environment and says which', async () => {
    const error = await failure(
      Promise.resolve().then(() => AzureBlobBackend.fromUrl('azure://acct1/backups', {})),
    );
    expect(error.code).toBe('USAGE_INVALID');
    expect(error.message).toContain('AZURE_STORAGE_CONNECTION_STRING');
    expect(error.message).toContain('AZURE_STORAGE_KEY');
    expect(error.message).toContain('AZURE_STORAGE_SAS_TOKEN');
  });

  it('refuses a connection string for another account, naming both accounts', () => {
    const connectionString = azuriteConnectionString('http://127.0.0.1:1/devstoreaccount1');
    expect(() =>
      AzureBlobBackend.fromUrl('azure://otheraccount/backups', connectionEnv(connectionString)),
    ).toThrow(/"devstoreaccount1".*"otheraccount"/);
    try {
      AzureBlobBackend.fromUrl('azure://otheraccount/backups', connectionEnv(connectionString));
    } catch (error) {
      expect(error).toMatchObject({ code: 'USAGE_INVALID' });
      expect((error as Error).message).not.toContain(AZURITE_KEY);
    }
  });

  it('refuses a malformed connection string or endpoint without echoing it', () => {
    const bad = 'AccountName=acct1;AccountKey=;Nonsense';
    let thrown: unknown;
    try {
      AzureBlobBackend.fromUrl('azure://acct1/backups', connectionEnv(bad));
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toMatchObject({ code: 'USAGE_INVALID' });
    expect((thrown as Error).message).toContain('AZURE_STORAGE_CONNECTION_STRING');
    expect((thrown as Error).message).not.toContain(bad);
    for (const endpoint of [
      'not a url',
      'ftp://x',
      'https://acct1.blob.core.windows.net/?sig=abc',
    ]) {
      expect(() =>
        AzureBlobBackend.fromUrl('azure://acct1/backups', {
          ...env,
          AZURE_STORAGE_BLOB_ENDPOINT: endpoint,
        }),
      ).toThrow(/AZURE_STORAGE_BLOB_ENDPOINT/);
    }
  });
});
