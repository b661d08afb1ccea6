import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

/** Log paths that could hold a bearer token; pino writes `[Redacted]` in their place. */
export const REDACTED_LOG_PATHS = [
  'authorization',
  'headers.authorization',
  '*.authorization',
  '*.headers.authorization',
] as const;

/**
 * The logger the HTTP server writes to. Given pino options, a new logger whose redaction adds
 * {@link REDACTED_LOG_PATHS} to the options' own. Given a logger, that logger unchanged: pino
 * cannot add redaction to an existing logger without dropping the redaction it already has, so
 * the server keeps the token out of reach instead (Fastify's request serializer logs no
 * headers, and the server deletes the Authorization header once it has read it).
 */
export function httpLogger(
  logger: Logger | LoggerOptions,
  destination?: DestinationStream,
): Logger {
  if (isLogger(logger)) return logger;
  const redact = logger.redact;
  const paths = [...REDACTED_LOG_PATHS];
  const options: LoggerOptions = {
    ...logger,
    redact:
      redact === undefined
        ? paths
        : Array.isArray(redact)
          ? [...redact, ...paths]
          : { ...redact, paths: [...redact.paths, ...paths] },
  };
  return destination === undefined ? pino(options) : pino(options, destination);
}

function isLogger(value: Logger | LoggerOptions): value is Logger {
  return typeof (value as Partial<Logger>).child === 'function';
}
