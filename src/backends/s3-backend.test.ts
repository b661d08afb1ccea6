import { rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { inspect } from 'node:util';
import {
  CreateBucketCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { HoldfastError, collect, type ErrorCode } from '../core/index.js';
import type { Backend } from './backend.js';
import {
  describeBackendConformance,
  failureCode,
  seededBytes,
} from './backend-conformance.testkit.js';
import { S3Backend, type S3BackendConfig } from './s3-backend.js';
import { FakeS3, type FakeS3Fault, type FakeS3Op } from './s3-fake.testkit.js';
import {
  S3RVER_CLIENT_OPTIONS,
  S3RVER_CREDENTIALS,
  startS3rver,
  type S3rverProcess,
} from './s3rver.testkit.js';

const MIB = 1024 * 1024;
const KEY_ID = 'AKIAHOLDFASTTEST0001';
const SECRET = 'holdfast/test+secret-never-to-be-shown';

/** The rejection of `promise`, which must be a HoldfastError. */
async function rejection(promise: Promise<unknown>): Promise<HoldfastError> {
  const error: unknown = await promise.then(
    () => expect.fail('expected the operation to fail'),
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(HoldfastError);
  return error as HoldfastError;
}

/** Everything an error could show: message, cause chain and every field, deeply. */
function everything(error: unknown): string {
  return inspect(error, { depth: Infinity, showHidden: true });
}

describe('S3Backend on s3rver', () => {
  let server: S3rverProcess;
  let admin: S3Client;
  let buckets = 0;

  beforeAll(async () => {
    server = await startS3rver();
    admin = new S3Client({
      endpoint: server.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { ...S3RVER_CREDENTIALS },
      ...S3RVER_CLIENT_OPTIONS,
    });
  });

  afterAll(async () => {
    admin?.destroy();
    await server?.stop();
  });

  async function freshBucket(): Promise<string> {
    buckets += 1;
    const bucket = `holdfast-${buckets}`;
    await admin.send(new CreateBucketCommand({ Bucket: bucket }));
    return bucket;
  }

  function backendOn(bucket: string, config: Partial<S3BackendConfig> = {}): S3Backend {
    return new S3Backend({
      bucket,
      prefix: 'vault',
      endpoint: server.endpoint,
      credentials: S3RVER_CREDENTIALS,
      clientOptions: S3RVER_CLIENT_OPTIONS,
      ...config,
    });
  }

  // s3rver ignores If-None-Match, so conditionalPut stays false: the suite then checks the
  // HEAD-first refusal and skips the race that only an atomic check can win.
  describeBackendConformance('S3Backend on s3rver', async () => {
    const bucket = await freshBucket();
    return {
      backend: backendOn(bucket),
      cleanup: () => rm(path.join(server.directory, bucket), { recursive: true, force: true }),
    };
  });

  it('keeps objects under its key prefix and sees nothing outside it', async () => {
    const bucket = await freshBucket();
    const backend = backendOn(bucket);
    try {
      await backend.put('packs/ab/ab01', Buffer.from('pack'));
      const raw = await admin.send(
        new GetObjectCommand({ Bucket: bucket, Key: 'vault/packs/ab/ab01' }),
      );
      expect(await raw.Body?.transformToString()).toBe('pack');
      for (const Key of ['outside', 'vaultx/y', 'vault/dir/']) {
        await admin.send(new PutObjectCommand({ Bucket: bucket, Key, Body: 'x' }));
      }
      expect(await collect(backend.list(''))).toEqual([{ name: 'packs/ab/ab01', size: 4 }]);
      expect(backend.location).toBe(`s3://${bucket}/vault?endpoint=${server.endpoint}`);
    } finally {
      await backend.close();
    }
  });

  it('uploads objects above the threshold in parts that s3rver reassembles', async () => {
    const bucket = await freshBucket();
    const backend = backendOn(bucket, { multipartThreshold: 5 * MIB, partSize: 5 * MIB });
    const send = vi.spyOn(S3Client.prototype, 'send');
    try {
      const data = seededBytes(7, 11 * MIB + 3);
      await backend.put('packs/big', data);
      const sent = send.mock.calls.map(([command]) => command.constructor.name);
      expect(sent).toEqual([
        'CreateMultipartUploadCommand',
        'UploadPartCommand',
        'UploadPartCommand',
        'UploadPartCommand',
        'CompleteMultipartUploadCommand',
      ]);
      expect((await backend.get('packs/big')).equals(data)).toBe(true);
      const across = await backend.getRange('packs/big', 5 * MIB - 10, 20);
      expect(across.equals(data.subarray(5 * MIB - 10, 5 * MIB + 10))).toBe(true);
    } finally {
      send.mockRestore();
      await backend.close();
    }
  });

  it('refuses an unknown access key with BACKEND_PERMISSION and never shows the key', async () => {
    const bucket = await freshBucket();
    const backend = backendOn(bucket, {
      credentials: { accessKeyId: KEY_ID, secretAccessKey: SECRET },
    });
    try {
      const error = await rejection(backend.put('keys/k1', Buffer.from('x')));
      expect(error.code).toBe('BACKEND_PERMISSION');
      expect(error.message).toContain('"keys/k1"');
      expect(error.message).toContain(backend.location);
      expect(error.message).toMatch(/Check the access key/);
      // s3rver echoes the key id in its answer; the error must not carry it on.
      for (const secret of [KEY_ID, SECRET]) {
        expect(everything(error)).not.toContain(secret);
        expect(backend.location).not.toContain(secret);
      }
    } finally {
      await backend.close();
    }
  });

  it('reports a missing bucket as BACKEND_IO that says to create it', async () => {
    const backend = backendOn('holdfast-no-such-bucket');
    try {
      const error = await rejection(backend.put('config', Buffer.from('x')));
      expect(error.code).toBe('BACKEND_IO');
      expect(error.message).toMatch(/bucket does not exist.*Create the bucket/);
    } finally {
      await backend.close();
    }
  });
});

describe('S3Backend on a strict fake S3', () => {
  let fake: FakeS3;
  let buckets = 0;
  const open: Backend[] = [];

  beforeAll(async () => {
    fake = await FakeS3.start({ accessKeyIds: [KEY_ID] });
  });

  afterAll(async () => {
    await fake?.close();
  });

  beforeEach(() => {
    fake.reset();
  });

  afterEach(async () => {
    await Promise.all(open.splice(0).map((backend) => backend.close()));
  });

  /** A fresh bucket and a backend on it with production SDK defaults (checksums on). */
  function fakeBackend(config: Partial<S3BackendConfig> = {}): {
    bucket: string;
    backend: S3Backend;
  } {
    buckets += 1;
    const bucket = `fake-${buckets}`;
    fake.createBucket(bucket);
    const backend = new S3Backend({
      bucket,
      prefix: 'vault',
      endpoint: fake.endpoint,
      credentials: { accessKeyId: KEY_ID, secretAccessKey: SECRET },
      conditionalPut: true,
      ...config,
    });
    open.push(backend);
    return { bucket, backend };
  }

  const ops = (): FakeS3Op[] => fake.requests.map((request) => request.op);

  describeBackendConformance(
    'S3Backend (conditional puts, multipart, checksums) on a fake S3',
    async () => {
      const { bucket, backend } = fakeBackend({
        multipartThreshold: 10 * MIB,
        partSize: 5 * MIB,
        listPageSize: 250,
      });
      open.pop();
      return { backend, cleanup: async () => fake.objects(bucket).clear() };
    },
  );

  it('puts with If-None-Match: * and maps 412 to BACKEND_EXISTS, without a HEAD', async () => {
    const { backend } = fakeBackend();
    await backend.put('locks/l1', Buffer.from('mine'), { ifNotExists: true });
    const error = await rejection(
      backend.put('locks/l1', Buffer.from('theirs'), { ifNotExists: true }),
    );
    expect(error.code).toBe('BACKEND_EXISTS');
    expect(error.message).toBe(
      `Object "locks/l1" already exists in ${backend.location}; it was left unchanged.`,
    );
    expect(ops()).toEqual(['PutObject', 'PutObject']);
    expect(fake.requests.map((request) => request.headers['if-none-match'])).toEqual(['*', '*']);
  });

  it('without conditional puts, checks with HEAD and then sends a plain PUT', async () => {
    const { backend } = fakeBackend({ conditionalPut: false });
    expect(backend.capabilities.conditionalPut).toBe(false);
    await backend.put('locks/l1', Buffer.from('mine'), { ifNotExists: true });
    expect(ops()).toEqual(['HeadObject', 'PutObject']);
    expect(fake.requests[1]?.headers['if-none-match']).toBeUndefined();
    expect(
      await failureCode(backend.put('locks/l1', Buffer.from('x'), { ifNotExists: true })),
    ).toBe('BACKEND_EXISTS');
    expect(ops()).toEqual(['HeadObject', 'PutObject', 'HeadObject']);
  });

  it('uploads in parts with a CRC32 each and lists them on completion', async () => {
    const { backend } = fakeBackend({ multipartThreshold: 5 * MIB, partSize: 5 * MIB });
    const data = seededBytes(11, 12 * MIB);
    await backend.put('packs/big', data);
    expect(ops()).toEqual([
      'CreateMultipartUpload',
      'UploadPart',
      'UploadPart',
      'UploadPart',
      'CompleteMultipartUpload',
    ]);
    expect(fake.requests[0]?.headers['x-amz-checksum-algorithm']).toBe('CRC32');
    for (const request of fake.requests.filter((r) => r.op === 'UploadPart')) {
      expect(request.headers['x-amz-checksum-crc32']).toMatch(/^[A-Za-z0-9+/]{6}==$/);
    }
    expect((await backend.get('packs/big')).equals(data)).toBe(true);
    expect(fake.openUploads()).toBe(0);
  });

  it('aborts a multipart upload whose part fails, and stores nothing', async () => {
    const { backend } = fakeBackend({
      multipartThreshold: 5 * MIB,
      partSize: 5 * MIB,
      partConcurrency: 1,
    });
    fake.inject({ op: 'UploadPart', skip: 1, fault: { status: 500, code: 'InternalError' } });
    const error = await rejection(backend.put('packs/big', seededBytes(12, 11 * MIB)));
    expect(error.code).toBe('BACKEND_TRANSIENT');
    expect(error.message).toContain('"packs/big"');
    expect(fake.abortedUploads).toHaveLength(1);
    expect(fake.openUploads()).toBe(0);
    expect(await failureCode(backend.stat('packs/big'))).toBe('BACKEND_NOT_FOUND');
  });

  it('aborts a cancelled multipart upload, and stores nothing', async () => {
    const { backend } = fakeBackend({
      multipartThreshold: 5 * MIB,
      partSize: 5 * MIB,
      partConcurrency: 1,
    });
    fake.inject({ op: 'UploadPart', skip: 1, fault: 'hang' });
    const controller = new AbortController();
    const put = backend.put('packs/big', seededBytes(13, 11 * MIB), { signal: controller.signal });
    await vi.waitFor(() => expect(ops().filter((op) => op === 'UploadPart')).toHaveLength(2));
    controller.abort();
    expect(await failureCode(put)).toBe('CANCELLED');
    await vi.waitFor(() => expect(fake.abortedUploads).toHaveLength(1));
    expect(ops()).not.toContain('CompleteMultipartUpload');
    expect(await failureCode(backend.stat('packs/big'))).toBe('BACKEND_NOT_FOUND');
  });

  it('aborts a conditional multipart upload that loses, reporting BACKEND_EXISTS', async () => {
    const { backend } = fakeBackend({ multipartThreshold: 5 * MIB, partSize: 5 * MIB });
    await backend.put('index/i1', Buffer.from('first'));
    const error = await rejection(
      backend.put('index/i1', seededBytes(14, 6 * MIB), { ifNotExists: true }),
    );
    expect(error.code).toBe('BACKEND_EXISTS');
    const complete = fake.requests.find((request) => request.op === 'CompleteMultipartUpload');
    expect(complete?.headers['if-none-match']).toBe('*');
    expect(fake.abortedUploads).toHaveLength(1);
    expect((await backend.get('index/i1')).toString()).toBe('first');
  });

  it('sends a CRC32 with each PUT and rejects a download that does not match it', async () => {
    const { bucket, backend } = fakeBackend();
    await backend.put('snapshots/s1', Buffer.from('snapshot body'));
    expect(fake.requests[0]?.headers['x-amz-checksum-crc32']).toBeDefined();
    expect((await backend.get('snapshots/s1')).toString()).toBe('snapshot body');
    expect(fake.requests[1]?.headers['x-amz-checksum-mode']).toBe('ENABLED');
    const stored = fake.objects(bucket).get('vault/snapshots/s1');
    stored?.data.fill(0x21, 0, 1);
    const error = await rejection(backend.get('snapshots/s1'));
    expect(error.code).toBe('BACKEND_IO');
    expect(error.message).toContain('"snapshots/s1"');
  });

  const calls = {
    put: (b) => b.put('k', Buffer.from('x')),
    'conditional put': (b) => b.put('k', Buffer.from('x'), { ifNotExists: true }),
    get: (b) => b.get('k'),
    getRange: (b) => b.getRange('k', 0, 1),
    stat: (b) => b.stat('k'),
    delete: (b) => b.delete('k'),
    list: (b) => collect(b.list('')),
  } satisfies Record<string, (backend: Backend) => Promise<unknown>>;
  const faults: Array<[keyof typeof calls, FakeS3Op, FakeS3Fault, ErrorCode]> = [
    ['put', 'PutObject', { status: 403, code: 'AccessDenied' }, 'BACKEND_PERMISSION'],
    ['put', 'PutObject', { status: 403, code: 'SignatureDoesNotMatch' }, 'BACKEND_PERMISSION'],
    ['put', 'PutObject', { status: 503, code: 'SlowDown' }, 'BACKEND_TRANSIENT'],
    ['put', 'PutObject', { status: 400, code: 'RequestTimeout' }, 'BACKEND_TRANSIENT'],
    ['put', 'PutObject', { status: 507, code: 'XMinioStorageFull' }, 'BACKEND_NO_SPACE'],
    ['put', 'PutObject', { status: 400, code: 'InvalidArgument' }, 'BACKEND_IO'],
    [
      'conditional put',
      'PutObject',
      { status: 409, code: 'ConditionalRequestConflict' },
      'BACKEND_TRANSIENT',
    ],
    ['get', 'GetObject', { status: 500, code: 'InternalError' }, 'BACKEND_TRANSIENT'],
    ['get', 'GetObject', 'reset', 'BACKEND_TRANSIENT'],
    ['getRange', 'GetObject', { status: 403, code: 'AccessDenied' }, 'BACKEND_PERMISSION'],
    ['stat', 'HeadObject', { status: 403, code: 'Forbidden' }, 'BACKEND_PERMISSION'],
    ['stat', 'HeadObject', { status: 503, code: 'SlowDown' }, 'BACKEND_TRANSIENT'],
    ['delete', 'DeleteObject', { status: 500, code: 'InternalError' }, 'BACKEND_TRANSIENT'],
    ['list', 'ListObjectsV2', { status: 503, code: 'SlowDown' }, 'BACKEND_TRANSIENT'],
    ['list', 'ListObjectsV2', 'reset', 'BACKEND_TRANSIENT'],
  ];

  it.each(faults)('classifies a %s whose %s fails with %j as %s', async (call, op, fault, code) => {
    const { backend } = fakeBackend();
    await backend.put('k', Buffer.from('present'));
    fake.inject({ op, fault });
    const error = await rejection(calls[call](backend));
    expect(error.code).toBe(code);
    expect(error.message).toContain(backend.location);
    if (call !== 'list') expect(error.message).toContain('"k"');
    expect(error.message).toMatch(/retry|Check|Free space/);
  });

  it('classifies a request that times out as BACKEND_TRANSIENT', async () => {
    const { backend } = fakeBackend({ clientOptions: { requestHandler: { socketTimeout: 300 } } });
    await backend.put('k', Buffer.from('present'));
    fake.inject({ op: 'GetObject', fault: 'hang' });
    expect(await failureCode(backend.get('k'))).toBe('BACKEND_TRANSIENT');
  });

  it('classifies a refused connection as BACKEND_TRANSIENT', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const { backend } = fakeBackend({ endpoint: `http://127.0.0.1:${port}` });
    const error = await rejection(backend.stat('k'));
    expect(error.code).toBe('BACKEND_TRANSIENT');
    expect(error.message).toContain('ECONNREFUSED');
  });

  it('never shows the access key or secret, even when the server echoes them', async () => {
    const logged: string[] = [];
    const log = (...args: unknown[]): void => {
      logged.push(inspect(args, { depth: Infinity }));
    };
    const wrongKey = 'AKIAWRONGKEY00000001';
    const { backend } = fakeBackend({
      credentials: { accessKeyId: wrongKey, secretAccessKey: SECRET },
      // Not allowed by the type; a JavaScript caller could still try.
      clientOptions: {
        logger: { trace: log, debug: log, info: log, warn: log, error: log },
      } as object,
    });
    const failures = await Promise.all([
      rejection(backend.put('k', Buffer.from('x'))),
      rejection(backend.get('k')),
      rejection(collect(backend.list('packs/'))),
    ]);
    expect(fake.requests.length).toBeGreaterThan(0);
    for (const error of failures) {
      expect(error.code).toBe('BACKEND_PERMISSION');
      for (const secret of [wrongKey, SECRET]) expect(everything(error)).not.toContain(secret);
    }
    // The server's explanation survives for --debug, with the key blanked out.
    expect(everything(failures[0])).toContain('The AWS Access Key Id [redacted] you provided');
    // The SDK would log the server's raw answer, echoed key id and all, so it gets no logger.
    expect(logged).toEqual([]);
    for (const secret of [wrongKey, SECRET]) expect(backend.location).not.toContain(secret);
  });

  it('deletes with a HEAD first, and sends no DELETE for a missing object', async () => {
    const { backend } = fakeBackend();
    await backend.put('k', Buffer.from('x'));
    await backend.delete('k');
    expect(await failureCode(backend.delete('k'))).toBe('BACKEND_NOT_FOUND');
    expect(ops()).toEqual(['PutObject', 'HeadObject', 'DeleteObject', 'HeadObject']);
  });

  it('reads ranges with one ranged GET, and a zero-length range with a HEAD', async () => {
    const { backend } = fakeBackend();
    const data = seededBytes(15, 100);
    await backend.put('k', data);
    expect(await backend.getRange('k', 10, 10)).toEqual(data.subarray(10, 20));
    expect(await backend.getRange('k', 0, 0)).toHaveLength(0);
    expect(ops()).toEqual(['PutObject', 'GetObject', 'HeadObject']);
    expect(fake.requests[1]?.headers.range).toBe('bytes=10-19');
  });

  it('fetches listing pages lazily, only as the caller reads on', async () => {
    const { backend } = fakeBackend({ listPageSize: 10 });
    for (let i = 0; i < 35; i++)
      await backend.put(`packs/${String(i).padStart(2, '0')}`, Buffer.from('x'));
    fake.reset();
    for await (const info of backend.list('packs/')) {
      expect(info.name).toBe('packs/00');
      break;
    }
    expect(ops()).toEqual(['ListObjectsV2']);
    fake.reset();
    expect(await collect(backend.list('packs/'))).toHaveLength(35);
    expect(ops()).toEqual(['ListObjectsV2', 'ListObjectsV2', 'ListObjectsV2', 'ListObjectsV2']);
    expect(fake.requests[1]?.query.get('continuation-token')).toBeTruthy();
  });

  it('cancels a GET in flight', async () => {
    const { backend } = fakeBackend();
    await backend.put('k', Buffer.from('x'));
    fake.inject({ op: 'GetObject', fault: 'hang' });
    const controller = new AbortController();
    const get = backend.get('k', { signal: controller.signal });
    await vi.waitFor(() => expect(ops()).toContain('GetObject'));
    controller.abort();
    expect(await failureCode(get)).toBe('CANCELLED');
  });

  it('fromUrl makes a working backend that takes its keys from the environment', async () => {
    fake.createBucket('from-url');
    const backend = S3Backend.fromUrl(
      `s3://from-url/vaults/main?endpoint=${fake.endpoint}&conditional-put=true`,
      {
        AWS_ACCESS_KEY_ID: KEY_ID,
        AWS_SECRET_ACCESS_KEY: SECRET,
      },
    );
    open.push(backend);
    expect(backend.location).toBe(`s3://from-url/vaults/main?endpoint=${fake.endpoint}`);
    expect(backend.capabilities.conditionalPut).toBe(true);
    await backend.put('holdfast.json', Buffer.from('{}'));
    expect(fake.objects('from-url').get('vaults/main/holdfast.json')?.data.toString()).toBe('{}');
    expect(fake.requests[0]?.headers.authorization).toContain(`Credential=${KEY_ID}/`);
    expect(fake.requests[0]?.headers['x-amz-checksum-crc32']).toBeDefined();
  });

  it('locks objects with S3 Object Lock: extends, never shortens or weakens, and HEAD shows it', async () => {
    const { bucket, backend } = fakeBackend({ objectLock: true });
    expect(backend.capabilities.objectLock).toBe(true);
    await backend.put('packs/ab/abcd', Buffer.from('pack'));
    const day = 86_400_000;
    const soon = Date.now() + day;
    const later = Date.now() + 10 * day;
    await backend.extendRetention('packs/ab/abcd', soon, { mode: 'governance' });
    expect((await backend.stat('packs/ab/abcd')).retainUntil).toBe(soon);
    await backend.extendRetention('packs/ab/abcd', later, { mode: 'compliance' });
    // Asking for less, or for governance, keeps the longer compliance lock.
    await backend.extendRetention('packs/ab/abcd', soon, { mode: 'governance' });
    expect(fake.objects(bucket).get('vault/packs/ab/abcd')?.lock).toEqual({
      mode: 'COMPLIANCE',
      until: later,
    });
    expect(ops().filter((op) => op === 'PutObjectRetention')).toHaveLength(2);
    expect(
      await failureCode(backend.extendRetention('packs/ab/none', soon, { mode: 'governance' })),
    ).toBe('BACKEND_NOT_FOUND');
    const plain = fakeBackend().backend;
    expect(plain.capabilities.objectLock).toBe(false);
    expect(
      await failureCode(plain.extendRetention('packs/ab/abcd', soon, { mode: 'governance' })),
    ).toBe('INTERNAL');
  });
});

describe('S3Backend configuration', () => {
  it('fromUrl reports capabilities and a credential-free location', async () => {
    const backend = S3Backend.fromUrl('s3://my-bucket/vaults/main?endpoint=http://127.0.0.1:9000', {
      AWS_ACCESS_KEY_ID: KEY_ID,
      AWS_SECRET_ACCESS_KEY: SECRET,
    });
    expect(backend.location).toBe('s3://my-bucket/vaults/main?endpoint=http://127.0.0.1:9000');
    expect(backend.capabilities).toEqual({
      conditionalPut: false,
      rangeReads: true,
      consistentList: true,
      objectLock: false,
    });
    await backend.close();
    const onAws = S3Backend.fromUrl('s3://my-bucket', {});
    expect(onAws.location).toBe('s3://my-bucket');
    await onAws.close();
  });

  it('fromUrl refuses credentials in the URL and malformed URLs with USAGE_INVALID', () => {
    for (const url of [`s3://${KEY_ID}:${SECRET}@my-bucket/p`, 's3://my-bucket/p?regoin=x']) {
      expect(() => S3Backend.fromUrl(url, {})).toThrow(
        expect.objectContaining({
          code: 'USAGE_INVALID',
          message: expect.stringMatching(/^Invalid S3 URL: (?!.*AKIA).*accepted form is s3:\/\//),
        }),
      );
    }
  });

  it('refuses an invalid explicit configuration with USAGE_INVALID', () => {
    const valid: S3BackendConfig = { bucket: 'my-bucket' };
    for (const config of [
      { ...valid, bucket: 'x' },
      { ...valid, prefix: 'a/../b' },
      { ...valid, partSize: 0 },
      { ...valid, multipartThreshold: 1.5 },
      { ...valid, listPageSize: -1 },
      { ...valid, endpoint: `http://${KEY_ID}:${SECRET}@host` },
    ]) {
      expect(() => new S3Backend(config)).toThrow(
        expect.objectContaining({
          code: 'USAGE_INVALID',
          message: expect.not.stringContaining(SECRET),
        }),
      );
    }
  });
});
