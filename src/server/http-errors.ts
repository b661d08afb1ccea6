import type { z } from 'zod';
import { HTTP_STATUS, HoldfastError, type ErrorCode } from '../core/index.js';

/** One problem with a request: where (`body.items[2].name`, `query.limit`) and what. */
export interface ErrorDetail {
  readonly path: string;
  readonly message: string;
}

/** The body of every error answer of the REST API. */
export interface ErrorBody {
  readonly error: {
    readonly code: ErrorCode;
    readonly message: string;
    readonly details?: readonly ErrorDetail[];
  };
}

/** An error as the server answers it. */
export interface HttpError {
  readonly status: number;
  readonly body: ErrorBody;
  /** True for 5xx: the failure is the server's, so it logs the error with its cause. */
  readonly serverFault: boolean;
}

/** At most this many details in one answer, so a huge invalid body gets a bounded reply. */
export const MAX_DETAILS = 20;

// Details ride beside the error rather than on a subclass: there is one error class.
const DETAILS = new WeakMap<HoldfastError, readonly ErrorDetail[]>();

/**
 * A REQUEST_INVALID error whose answer lists `details`. Route handlers use it for checks the
 * schemas cannot express (`requestInvalid('...', [{ path: 'body.days', message: '...' }])`).
 */
export function requestInvalid(
  message: string,
  details: readonly ErrorDetail[] = [],
): HoldfastError {
  const error = new HoldfastError('REQUEST_INVALID', message);
  if (details.length > 0) DETAILS.set(error, details.slice(0, MAX_DETAILS));
  return error;
}

/** The details attached by {@link requestInvalid}, if any. */
export function errorDetails(error: HoldfastError): readonly ErrorDetail[] | undefined {
  return DETAILS.get(error);
}

/** A REQUEST_INVALID error for what a zod schema rejected in one part of the request. */
export function invalidPart(
  part: 'params' | 'query' | 'body',
  issues: readonly z.core.$ZodIssue[],
): HoldfastError {
  const details = issues.flatMap((issue) => issueDetails(part, issue));
  const first = details[0] ?? { path: part, message: 'is invalid' };
  const more = details.length > 1 ? ` (and ${details.length - 1} more; see details)` : '';
  return requestInvalid(`Invalid request ${part}: ${first.path}: ${first.message}${more}`, details);
}

function issueDetails(part: string, issue: z.core.$ZodIssue): ErrorDetail[] {
  const path = formatPath(part, issue.path);
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => ({
      path: formatPath(path, [key]),
      message: 'is not a known field',
    }));
  }
  return [{ path, message: issue.message }];
}

/** `body`, `['items', 2, 'name']` → `body.items[2].name`. */
export function formatPath(root: string, path: readonly PropertyKey[]): string {
  let text = root;
  for (const key of path) {
    if (typeof key === 'number') text += `[${key}]`;
    else if (typeof key === 'string' && /^[A-Za-z_$][\w$]*$/.test(key)) text += `.${key}`;
    else text += `[${JSON.stringify(String(key))}]`;
  }
  return text;
}

// What Fastify's own 4xx errors mean in our terms. Fastify's messages are replaced so that
// every answer reads the same way and says what to do.
const FASTIFY_ERRORS: Readonly<Record<string, { code: ErrorCode; message: string }>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: {
    code: 'REQUEST_TOO_LARGE',
    message: 'The request body is larger than the server accepts; send less.',
  },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    code: 'REQUEST_INVALID',
    message: 'Unsupported Content-Type: send request bodies as application/json.',
  },
  FST_ERR_CTP_INVALID_JSON_BODY: {
    code: 'REQUEST_INVALID',
    message: 'The request body is not valid JSON.',
  },
  FST_ERR_CTP_EMPTY_JSON_BODY: {
    code: 'REQUEST_INVALID',
    message: 'The request body is empty but its Content-Type says JSON.',
  },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: {
    code: 'REQUEST_INVALID',
    message: 'The Content-Length header does not match the body.',
  },
  FST_ERR_BAD_URL: {
    code: 'REQUEST_INVALID',
    message: 'The URL is malformed: it has an invalid percent-encoding.',
  },
  FST_ERR_MAX_PARAM_LENGTH: {
    code: 'REQUEST_INVALID',
    message: 'A path segment of the URL is too long to be a name or an id.',
  },
};

/**
 * Classifies anything thrown while serving a request. A {@link HoldfastError} answers with its
 * code's status and message (INTERNAL excepted); Fastify's request errors become REQUEST_INVALID
 * or REQUEST_TOO_LARGE; everything else is INTERNAL with a generic message naming the request
 * id, never the error's own text.
 */
export function toHttpError(error: unknown, requestId: string): HttpError {
  if (error instanceof HoldfastError && error.code !== 'INTERNAL') {
    const details = errorDetails(error);
    return {
      status: HTTP_STATUS[error.code],
      body: {
        error: {
          code: error.code,
          message: error.message,
          ...(details === undefined ? {} : { details }),
        },
      },
      serverFault: HTTP_STATUS[error.code] >= 500,
    };
  }
  const fastify = fastifyRequestError(error);
  if (fastify !== undefined) {
    return { status: HTTP_STATUS[fastify.code], body: { error: fastify }, serverFault: false };
  }
  return {
    status: HTTP_STATUS.INTERNAL,
    body: {
      error: {
        code: 'INTERNAL',
        message: `An internal error occurred; the server log has the details under request id ${requestId}.`,
      },
    },
    serverFault: true,
  };
}

/** Fastify's errors about the request itself (status 4xx), in our terms. */
function fastifyRequestError(error: unknown): { code: ErrorCode; message: string } | undefined {
  if (!(error instanceof Error) || !('code' in error) || !('statusCode' in error)) return undefined;
  const { code, statusCode } = error;
  if (typeof code !== 'string' || !code.startsWith('FST_')) return undefined;
  if (typeof statusCode !== 'number' || statusCode < 400 || statusCode >= 500) return undefined;
  return FASTIFY_ERRORS[code] ?? { code: 'REQUEST_INVALID', message: error.message };
}
