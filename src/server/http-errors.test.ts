import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ERROR_CODES, HTTP_STATUS, HoldfastError } from '../core/index.js';
import {
  MAX_DETAILS,
  errorDetails,
  formatPath,
  invalidPart,
  requestInvalid,
  toHttpError,
} from './http-errors.js';

/** An error shaped like Fastify's own (`code` FST_…, `statusCode`). */
function fastifyError(code: string, statusCode: number, message = 'fastify says no'): Error {
  return Object.assign(new Error(message), { code, statusCode });
}

describe('toHttpError', () => {
  it('answers every HoldfastError code with the status of the code table', () => {
    for (const code of ERROR_CODES.filter((c) => c !== 'INTERNAL')) {
      const answer = toHttpError(new HoldfastError(code, `about ${code}`), 'req-1');
      expect(answer.status, code).toBe(HTTP_STATUS[code]);
      expect(answer.body).toEqual({ error: { code, message: `about ${code}` } });
      expect(answer.serverFault).toBe(HTTP_STATUS[code] >= 500);
    }
  });

  it('hides the message of INTERNAL errors and of anything that is not ours', () => {
    for (const error of [
      new HoldfastError('INTERNAL', 'invariant broken at /srv/secret'),
      new Error('/srv/secret'),
      new TypeError('/srv/secret is not a function'),
      'a string /srv/secret',
      { statusCode: 400, message: '/srv/secret' },
      Object.assign(new Error('/srv/secret'), { statusCode: 404 }),
      fastifyError('FST_ERR_SOMETHING', 500, '/srv/secret'),
      undefined,
    ]) {
      const answer = toHttpError(error, 'req-7');
      expect(answer.status).toBe(500);
      expect(answer.body.error.code).toBe('INTERNAL');
      expect(answer.body.error.message).toContain('req-7');
      expect(JSON.stringify(answer.body)).not.toContain('/srv/secret');
      expect(answer.serverFault).toBe(true);
    }
  });

  it("maps Fastify's request errors to REQUEST_INVALID and REQUEST_TOO_LARGE", () => {
    expect(toHttpError(fastifyError('FST_ERR_CTP_BODY_TOO_LARGE', 413), 'r')).toMatchObject({
      status: 413,
      body: { error: { code: 'REQUEST_TOO_LARGE' } },
      serverFault: false,
    });
    for (const code of [
      'FST_ERR_CTP_INVALID_MEDIA_TYPE',
      'FST_ERR_CTP_INVALID_JSON_BODY',
      'FST_ERR_BAD_URL',
      'FST_ERR_MAX_PARAM_LENGTH',
      'FST_ERR_SOMETHING_NEW',
    ]) {
      const answer = toHttpError(fastifyError(code, 415), 'r');
      expect(answer.status, code).toBe(400);
      expect(answer.body.error.code).toBe('REQUEST_INVALID');
    }
  });

  it('carries the details of requestInvalid, bounded', () => {
    const many = Array.from({ length: 50 }, (_, i) => ({ path: `body.x[${i}]`, message: 'bad' }));
    const error = requestInvalid('Many problems.', many);
    expect(errorDetails(error)).toHaveLength(MAX_DETAILS);
    const answer = toHttpError(error, 'r');
    expect(answer.body.error.details).toHaveLength(MAX_DETAILS);
    expect(toHttpError(requestInvalid('None.'), 'r').body.error).not.toHaveProperty('details');
  });
});

describe('invalidPart', () => {
  it('names each problem by its path, one detail per unknown key', () => {
    const schema = z.strictObject({
      a: z.number(),
      list: z.array(z.strictObject({ b: z.string() })),
    });
    const result = schema.safeParse({ a: 'x', list: [{ b: 1 }, { b: 'ok', c: 1 }], d: 1, e: 2 });
    expect(result.success).toBe(false);
    const error = invalidPart('body', result.error!.issues);
    expect(error.code).toBe('REQUEST_INVALID');
    expect(
      errorDetails(error)
        ?.map((d) => d.path)
        .sort(),
    ).toEqual(['body.a', 'body.d', 'body.e', 'body.list[0].b', 'body.list[1].c'].sort());
    expect(error.message).toMatch(
      /^Invalid request body: body\.\S+: .+ \(and 4 more; see details\)$/,
    );
  });

  it('formats odd keys so the path stays readable', () => {
    expect(formatPath('query', [])).toBe('query');
    expect(formatPath('body', ['a', 0, 'b-c', 'with space', '$ok'])).toBe(
      'body.a[0]["b-c"]["with space"].$ok',
    );
  });
});
