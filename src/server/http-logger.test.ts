import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { httpLogger } from './http-logger.js';

function capture() {
  const lines: string[] = [];
  return { lines, destination: { write: (line: string) => void lines.push(line) } };
}

const SECRET = 'tok-secret-0123456789';

describe('httpLogger', () => {
  it('redacts the Authorization header wherever a request or error carries it', () => {
    const { lines, destination } = capture();
    const log = httpLogger({ level: 'info' }, destination);
    log.info({ req: { headers: { authorization: `Bearer ${SECRET}` } } }, 'request');
    log.info({ headers: { authorization: `Bearer ${SECRET}` } }, 'headers');
    log.info({ err: { authorization: SECRET } }, 'error');
    expect(lines).toHaveLength(3);
    expect(lines.join('')).not.toContain(SECRET);
    expect(lines.join('')).toContain('[Redacted]');
  });

  it("keeps the options' own redaction, in both of its forms", () => {
    for (const redact of [['password'], { paths: ['password'], censor: '***' }]) {
      const { lines, destination } = capture();
      const log = httpLogger({ redact }, destination);
      log.info({ password: 'hunter2', headers: { authorization: SECRET } }, 'both');
      expect(lines.join(''), JSON.stringify(redact)).not.toMatch(/hunter2|tok-secret/);
    }
  });

  it('uses a given logger as it is', () => {
    const logger = pino({ level: 'silent' });
    expect(httpLogger(logger)).toBe(logger);
  });
});
