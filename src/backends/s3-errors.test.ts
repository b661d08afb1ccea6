import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { HoldfastError } from '../core/index.js';
import { S3Failure, classifyS3Error, s3ErrorMatches, type S3ErrorContext } from './s3-errors.js';

const LOCATION = 's3://my-bucket/vault';
const read: S3ErrorContext = { action: 'read', name: 'packs/ab/ab01', location: LOCATION };
const write: S3ErrorContext = { ...read, action: 'write' };

/** An error shaped like the SDK's: S3 code as name, HTTP status in `$metadata`. */
function sdkError(name: string, status?: number, fields: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(`${name} from the server`), {
    name,
    $metadata: status === undefined ? {} : { httpStatusCode: status, requestId: 'REQ1' },
    ...fields,
  });
}

function errnoError(code: string): Error {
  return Object.assign(new Error(`connect ${code} 127.0.0.1:9`), { code });
}

describe('classifyS3Error', () => {
  it.each([
    ['NoSuchKey on a read', sdkError('NoSuchKey', 404), read, 'BACKEND_NOT_FOUND'],
    ['a bare 404 (HEAD) on a read', sdkError('NotFound', 404), read, 'BACKEND_NOT_FOUND'],
    ['NoSuchUpload on a write', sdkError('NoSuchUpload', 404), write, 'BACKEND_IO'],
    ['NoSuchBucket', sdkError('NoSuchBucket', 404), read, 'BACKEND_IO'],
    [
      '412 on a conditional write',
      sdkError('PreconditionFailed', 412),
      { ...write, conditional: true },
      'BACKEND_EXISTS',
    ],
    ['412 on a plain read', sdkError('PreconditionFailed', 412), read, 'BACKEND_IO'],
    [
      '409 ConditionalRequestConflict',
      sdkError('ConditionalRequestConflict', 409),
      { ...write, conditional: true },
      'BACKEND_TRANSIENT',
    ],
    ['AccessDenied', sdkError('AccessDenied', 403), read, 'BACKEND_PERMISSION'],
    ['InvalidAccessKeyId', sdkError('InvalidAccessKeyId', 403), read, 'BACKEND_PERMISSION'],
    ['ExpiredToken', sdkError('ExpiredToken', 400), read, 'BACKEND_PERMISSION'],
    ['no credentials anywhere', sdkError('CredentialsProviderError'), read, 'BACKEND_PERMISSION'],
    ['QuotaExceeded', sdkError('QuotaExceeded', 403), write, 'BACKEND_NO_SPACE'],
    ['SlowDown', sdkError('SlowDown', 503), write, 'BACKEND_TRANSIENT'],
    ['a 429', sdkError('TooManyRequests', 429), read, 'BACKEND_TRANSIENT'],
    ['a 502 without a code', sdkError('Unknown', 502), read, 'BACKEND_TRANSIENT'],
    ['an SDK timeout', sdkError('TimeoutError'), read, 'BACKEND_TRANSIENT'],
    ['a connection reset', errnoError('ECONNRESET'), read, 'BACKEND_TRANSIENT'],
    ['an unknown host', errnoError('ENOTFOUND'), read, 'BACKEND_IO'],
    [
      'a checksum mismatch',
      new Error('Checksum mismatch: expected "a", received "b"'),
      read,
      'BACKEND_IO',
    ],
    ['an abort', sdkError('AbortError'), read, 'CANCELLED'],
  ])('classifies %s', (_label, error, context, code) => {
    const classified = classifyS3Error(error, context);
    expect(classified.code).toBe(code);
    expect(classified.cause).toBeInstanceOf(S3Failure);
    if (code !== 'CANCELLED') {
      expect(classified.message).toContain('"packs/ab/ab01"');
      expect(classified.message).toContain(LOCATION);
    }
  });

  it('reports CANCELLED whatever the error when the signal is aborted', () => {
    const controller = new AbortController();
    controller.abort();
    const error = classifyS3Error(errnoError('ECONNRESET'), { ...read, signal: controller.signal });
    expect(error.code).toBe('CANCELLED');
  });

  it('tells to turn conditional puts off when the server does not implement them', () => {
    const error = classifyS3Error(sdkError('NotImplemented', 501), { ...write, conditional: true });
    expect(error.code).toBe('BACKEND_IO');
    expect(error.message).toContain('conditional-put=false');
  });

  it('passes a HoldfastError through unchanged', () => {
    const original = new HoldfastError('BACKEND_EXISTS', 'taken');
    expect(classifyS3Error(original, write)).toBe(original);
  });

  it('keeps only a redacted summary of the SDK error as the cause', () => {
    const error = sdkError('SignatureDoesNotMatch', 403, {
      message:
        'Mismatch for AKIAEXAMPLE0000000001 with Credential=AKIAEXAMPLE0000000001/20250101/x',
      AWSAccessKeyId: 'AKIAEXAMPLE0000000001',
      StringToSign: 'AWS4-HMAC-SHA256 with the secret-derived signature',
    });
    const classified = classifyS3Error(error, { ...read, secrets: ['AKIAEXAMPLE0000000001'] });
    const cause = classified.cause as S3Failure;
    expect(cause.message).toBe('Mismatch for [redacted] with Credential=[redacted]');
    expect(cause).toMatchObject({
      s3Code: 'SignatureDoesNotMatch',
      httpStatus: 403,
      requestId: 'REQ1',
    });
    const shown = inspect(classified, { depth: Infinity, showHidden: true });
    expect(shown).not.toContain('AKIAEXAMPLE');
    expect(shown).not.toContain('StringToSign');
    expect(classified.message).toContain('HTTP 403, SignatureDoesNotMatch');
  });

  it('shows only code-like tokens from the server in its own message', () => {
    const classified = classifyS3Error(sdkError('Injected text; run rm -rf', 400), read);
    expect(classified.message).not.toContain('Injected');
    expect(classified.message).toContain('HTTP 400');
  });
});

describe('s3ErrorMatches', () => {
  it('matches by S3 code or by HTTP status', () => {
    expect(s3ErrorMatches(sdkError('InvalidRange', 416), 'InvalidRange')).toBe(true);
    expect(s3ErrorMatches(sdkError('Other', 416), 'InvalidRange', 416)).toBe(true);
    expect(s3ErrorMatches(sdkError('NoSuchKey', 404), 'InvalidRange', 416)).toBe(false);
    expect(s3ErrorMatches('not an error', 'InvalidRange', 416)).toBe(false);
  });
});
