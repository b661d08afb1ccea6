import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

// Test receivers for notifications. They listen on 127.0.0.1 only, on a port the system picks.

/** One request a {@link WebhookReceiver} got. */
export interface ReceivedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  /** The raw body, as signed. */
  readonly body: Buffer;
}

/** How the receiver answers request number `index` (0-based): a status, or never. */
export type Answer = { status: number; headers?: Record<string, string> } | 'hang';

/** A real HTTP server that records what it receives. */
export interface WebhookReceiver {
  readonly url: string;
  readonly requests: ReceivedRequest[];
  close(): Promise<void>;
}

async function listen(server: Server | SMTPServer): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = (server as { server?: Server }).server?.address() ?? (server as Server).address();
  return (address as AddressInfo).port;
}

/** Starts an HTTP receiver on 127.0.0.1 that answers as `answer` says. */
export async function startWebhookReceiver(
  answer: (request: ReceivedRequest, index: number) => Answer = () => ({ status: 204 }),
): Promise<WebhookReceiver> {
  const requests: ReceivedRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const request: ReceivedRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks),
      };
      requests.push(request);
      const reply = answer(request, requests.length - 1);
      if (reply === 'hang') return;
      res.writeHead(reply.status, reply.headers).end('receiver says hello');
    });
  });
  const port = await listen(server);
  return {
    url: `http://127.0.0.1:${port}/hooks/holdfast?token=path-token`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A port on 127.0.0.1 that nothing listens on (it was just released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  const port = await listen(server);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** One message a {@link SmtpReceiver} accepted. */
export interface ReceivedMail {
  readonly mailFrom: string;
  readonly rcptTo: string[];
  /** The message as sent: headers, blank line, body. */
  readonly raw: string;
  /** The user that logged in, if any. */
  readonly user: string | undefined;
}

/** A real SMTP server that records what it receives. */
export interface SmtpReceiver {
  readonly port: number;
  readonly messages: ReceivedMail[];
  /** Login attempts, with the passwords given (for tests to compare). */
  readonly logins: { user: string; password: string }[];
  close(): Promise<void>;
}

/**
 * Starts an SMTP server on 127.0.0.1 without STARTTLS. With `credentials`, it offers AUTH PLAIN
 * and LOGIN over the plain connection and accepts only those; otherwise AUTH is optional.
 */
export async function startSmtpReceiver(credentials?: {
  user: string;
  password: string;
}): Promise<SmtpReceiver> {
  const messages: ReceivedMail[] = [];
  const logins: { user: string; password: string }[] = [];
  const server = new SMTPServer({
    disabledCommands: ['STARTTLS'],
    authOptional: credentials === undefined,
    authMethods: ['PLAIN', 'LOGIN'],
    allowInsecureAuth: true,
    logger: false,
    onAuth(auth, _session, callback) {
      logins.push({ user: auth.username ?? '', password: auth.password ?? '' });
      if (auth.username === credentials?.user && auth.password === credentials?.password) {
        callback(null, { user: auth.username });
      } else {
        callback(new Error('Authentication credentials invalid'));
      }
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const { mailFrom, rcptTo } = session.envelope;
        messages.push({
          mailFrom: mailFrom === false ? '' : mailFrom.address,
          rcptTo: rcptTo.map((rcpt) => rcpt.address),
          raw: Buffer.concat(chunks).toString('utf8'),
          user: typeof session.user === 'string' ? session.user : undefined,
        });
        callback();
      });
    },
  });
  const port = await listen(server);
  return {
    port,
    messages,
    logins,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
