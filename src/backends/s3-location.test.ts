import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { HoldfastError } from '../core/index.js';
import { describeS3Location, parseS3Url } from './s3-location.js';

const KEY_ID = 'AKIAHOLDFASTTEST0001';
const SECRET = 'holdfast/test+secret-never-to-be-shown';

describe('parseS3Url', () => {
  const FORM = 's3://<bucket>/<prefix>?endpoint=';

  it('reads every part of a full URL', () => {
    const url =
      's3://my-bucket/vaults/main/?endpoint=http://127.0.0.1:9000/&region=eu-central-1' +
      '&path-style=false&conditional-put=true&object-lock=true';
    expect(
      parseS3Url(url, { AWS_REGION: 'us-west-2', AWS_ENDPOINT_URL: 'https://other.example' }),
    ).toEqual({
      bucket: 'my-bucket',
      keyPrefix: 'vaults/main/',
      endpoint: 'http://127.0.0.1:9000',
      region: 'eu-central-1',
      forcePathStyle: false,
      conditionalPut: true,
      objectLock: true,
    });
  });

  it('defaults to AWS in us-east-1, virtual-hosted, without conditional puts or keys', () => {
    expect(parseS3Url('s3://my-bucket', {})).toEqual({
      bucket: 'my-bucket',
      keyPrefix: '',
      region: 'us-east-1',
      forcePathStyle: false,
      conditionalPut: false,
      objectLock: false,
    });
  });

  it('takes the endpoint, region and keys from the environment', () => {
    const env = {
      AWS_ENDPOINT_URL: 'https://general.example',
      AWS_ENDPOINT_URL_S3: 'https://minio.example:9000/',
      AWS_REGION: 'eu-west-1',
      AWS_ACCESS_KEY_ID: KEY_ID,
      AWS_SECRET_ACCESS_KEY: SECRET,
      AWS_SESSION_TOKEN: 'token',
    };
    expect(parseS3Url('s3://my-bucket/p', env)).toEqual({
      bucket: 'my-bucket',
      keyPrefix: 'p/',
      endpoint: 'https://minio.example:9000',
      region: 'eu-west-1',
      forcePathStyle: true,
      conditionalPut: false,
      objectLock: false,
      credentials: { accessKeyId: KEY_ID, secretAccessKey: SECRET, sessionToken: 'token' },
    });
  });

  it('refuses credentials in the URL without repeating them', () => {
    for (const url of [`s3://${KEY_ID}:${SECRET}@my-bucket/p`, `s3://${KEY_ID}@my-bucket/p`]) {
      const error = (() => {
        try {
          parseS3Url(url, {});
        } catch (caught) {
          return caught as HoldfastError;
        }
        return expect.fail('expected USAGE_INVALID');
      })();
      expect(error.code).toBe('USAGE_INVALID');
      expect(error.message).toContain('AWS_ACCESS_KEY_ID');
      expect(inspect(error, { depth: Infinity, showHidden: true })).not.toContain(KEY_ID);
    }
  });

  it.each([
    ['not a URL', 'my-bucket/prefix'],
    ['another scheme', 'http://my-bucket/prefix'],
    ['no bucket', 's3:///prefix'],
    ['a bucket too short', 's3://ab/prefix'],
    ['a bucket with capitals or underscores', 's3://My_Bucket/prefix'],
    ['a port', 's3://my-bucket:9000/prefix'],
    ['an empty segment', 's3://my-bucket/a//b'],
    ['a reserved segment', 's3://my-bucket/.tmp-x/y'],
    ['a malformed escape', 's3://my-bucket/%E0%A4%A'],
    ['a fragment', 's3://my-bucket/prefix#top'],
    ['an unknown option', 's3://my-bucket/prefix?regoin=eu-west-1'],
    ['an option given twice', 's3://my-bucket/prefix?region=a&region=b'],
    ['a bad boolean', 's3://my-bucket/prefix?path-style=yes'],
    ['a bad region', 's3://my-bucket/prefix?region=eu west'],
    ['a non-http endpoint', 's3://my-bucket/prefix?endpoint=ftp://host'],
    ['an endpoint with credentials', 's3://my-bucket/prefix?endpoint=http://user:pw@host'],
    ['an endpoint with a query', 's3://my-bucket/prefix?endpoint=http://host/%3Fa%3Db'],
  ])('refuses %s with USAGE_INVALID showing the accepted form', (_problem, url) => {
    expect(() => parseS3Url(url, {})).toThrow(
      expect.objectContaining({ code: 'USAGE_INVALID', message: expect.stringContaining(FORM) }),
    );
  });

  it('refuses an endpoint with credentials from the environment, naming only the variable', () => {
    const env = { AWS_ENDPOINT_URL: `http://${KEY_ID}:${SECRET}@minio.example` };
    expect(() => parseS3Url('s3://my-bucket', env)).toThrow(
      /AWS_ENDPOINT_URL contains credentials/,
    );
    expect(() => parseS3Url('s3://my-bucket', env)).toThrow(expect.not.stringContaining(KEY_ID));
  });

  it('refuses half a key pair from the environment', () => {
    expect(() => parseS3Url('s3://my-bucket', { AWS_ACCESS_KEY_ID: KEY_ID })).toThrow(
      expect.objectContaining({
        code: 'USAGE_INVALID',
        message: expect.stringContaining('Set both'),
      }),
    );
  });

  it('describes a location without credentials, the endpoint only when there is one', () => {
    expect(describeS3Location({ bucket: 'my-bucket', keyPrefix: '' })).toBe('s3://my-bucket');
    expect(
      describeS3Location({
        bucket: 'my-bucket',
        keyPrefix: 'vaults/main/',
        endpoint: 'http://127.0.0.1:9000',
      }),
    ).toBe('s3://my-bucket/vaults/main?endpoint=http://127.0.0.1:9000');
  });
});
