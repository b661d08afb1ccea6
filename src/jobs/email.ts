import nodemailer from 'nodemailer';
import type { NodemailerError } from 'nodemailer';
import { HoldfastError, formatBytes, formatDuration } from '../core/index.js';
import { EMAIL_CHANNEL_ID, type DeliveryResult, type JobNotice } from './job-notice.js';
import type { EmailSettings } from './notification-settings.js';
import {
  cancelledError,
  describeNotice,
  oneLine,
  scrubSecrets,
  type DeliveryContext,
  waitToRetry,
} from './notify-delivery.js';

/** Subject and plain-text body of a notification e-mail. */
export interface EmailMessage {
  readonly subject: string;
  readonly text: string;
}

/**
 * The e-mail for `notice`: subject `[Holdfast] backup of item 'docs' failed`, and a body that
 * lists the job's id, type, item, vault, state, times, counts and message.
 */
export function emailMessage(notice: JobNotice): EmailMessage {
  const summary = describeNotice(notice);
  const iso = (ms: number) => new Date(ms).toISOString();
  const rows: [string, string | undefined][] = [
    ['Job', notice.jobId],
    ['Type', notice.jobType],
    ['Item', notice.itemName],
    ['Vault', notice.vaultName],
    ['State', notice.state],
    ['Started', notice.startedAt === undefined ? undefined : iso(notice.startedAt)],
    ['Ended', notice.endedAt === undefined ? undefined : iso(notice.endedAt)],
    [
      'Duration',
      notice.startedAt !== undefined && notice.endedAt !== undefined
        ? formatDuration((notice.endedAt - notice.startedAt) / 1000)
        : undefined,
    ],
    ['Errors', notice.errorCount === undefined ? undefined : String(notice.errorCount)],
    ['Data', notice.bytes === undefined ? undefined : formatBytes(notice.bytes)],
    ['Message', notice.message === undefined ? undefined : oneLine(notice.message)],
    ['Console', notice.consoleUrl],
  ];
  const intro =
    notice.kind === 'test'
      ? 'This is a test notification from Holdfast. If you can read it, e-mail notifications work.'
      : `Holdfast: ${summary}.`;
  const lines = rows
    .filter((row): row is [string, string] => row[1] !== undefined)
    .map(([label, value]) => `${`${label}:`.padEnd(10)}${value}`);
  return { subject: `[Holdfast] ${summary}`, text: [intro, '', ...lines, ''].join('\n') };
}

// Failures of the connection, which a later attempt may not meet; a reply from the server says
// itself whether it is permanent.
const TRANSIENT_CODES: ReadonlySet<string> = new Set([
  'ECONNECTION',
  'ETIMEDOUT',
  'ESOCKET',
  'EDNS',
]);

/**
 * Sends `notice` by e-mail through the configured SMTP server. Connection failures, timeouts and
 * transient (4xx) replies are retried with exponential backoff; a refused login or recipient is
 * not. Never throws; the SMTP password appears in no result and no log line.
 */
export async function deliverEmail(
  email: EmailSettings,
  notice: JobNotice,
  context: DeliveryContext,
): Promise<DeliveryResult> {
  const channel = EMAIL_CHANNEL_ID;
  const fields = {
    channel,
    server: `${email.host}:${email.port}`,
    event: notice.kind,
    jobId: notice.jobId,
  };
  const failed = (attempts: number, error: HoldfastError): DeliveryResult => {
    context.log('error', 'e-mail notification failed', {
      ...fields,
      attempts,
      error: error.message,
    });
    return { channel, kind: 'email', ok: false, attempts, error };
  };
  const message = emailMessage(notice);
  let attempts = 0;
  for (;;) {
    if (context.signal?.aborted) return failed(attempts, cancelledError(context.signal));
    attempts += 1;
    const error = await sendOnce(email, message, context);
    if (error === undefined) {
      context.log('info', 'e-mail notification sent', {
        ...fields,
        attempts,
        subject: message.subject,
      });
      return { channel, kind: 'email', ok: true, attempts };
    }
    if (context.signal?.aborted) return failed(attempts, cancelledError(context.signal));
    const failure = describeSmtpError(email, error);
    if (!failure.retryable || attempts > context.retries) return failed(attempts, failure.error);
    if (!(await waitToRetry(context, 'e-mail', attempts, fields, failure.error)))
      return failed(attempts, cancelledError(context.signal));
  }
}

async function sendOnce(
  email: EmailSettings,
  message: EmailMessage,
  context: DeliveryContext,
): Promise<NodemailerError | undefined> {
  const transport = nodemailer.createTransport({
    host: email.host,
    port: email.port,
    secure: email.secure ?? email.port === 465,
    auth: email.user === undefined ? undefined : { user: email.user, pass: email.password },
    connectionTimeout: context.timeoutMs,
    greetingTimeout: context.timeoutMs,
    socketTimeout: context.timeoutMs,
    dnsTimeout: context.timeoutMs,
    // nodemailer's own logging would write the SMTP dialogue, AUTH included, where we cannot
    // scrub it.
    logger: false,
    debug: false,
    transactionLog: false,
    disableFileAccess: true,
    disableUrlAccess: true,
  });
  // The per-step timeouts above do not bound a server that trickles replies; this does.
  const deadline = AbortSignal.timeout(context.timeoutMs * 3);
  const signal = context.signal ? AbortSignal.any([context.signal, deadline]) : deadline;
  try {
    await transport.sendMail({
      from: email.from,
      to: email.to,
      subject: message.subject,
      text: message.text,
      date: new Date(context.now()),
      signal,
    });
    return undefined;
  } catch (error) {
    return error instanceof Error ? (error as NodemailerError) : new Error(String(error));
  } finally {
    transport.close();
  }
}

function describeSmtpError(
  email: EmailSettings,
  error: NodemailerError,
): { retryable: boolean; error: HoldfastError } {
  const server = `${email.host}:${email.port}`;
  const secrets = [
    email.password,
    email.user && email.password && `\0${email.user}\0${email.password}`,
  ];
  const reply =
    error.response === undefined ? undefined : scrubSecrets(oneLine(error.response), secrets);
  const code = error.code ?? 'unknown';
  const detail = scrubSecrets(oneLine(error.message), secrets);
  let reason: string;
  if (code === 'EAUTH') {
    const said = reply === undefined ? '' : ` (${reply})`;
    reason = `the SMTP server ${server} refused the login of user '${email.user ?? ''}'${said}; check user and password`;
  } else if (code === 'ETIMEDOUT' || code === 'EABORT') {
    reason = `the SMTP server ${server} did not answer in time`;
  } else if (reply !== undefined) {
    reason = `the SMTP server ${server} answered: ${reply}`;
  } else if (TRANSIENT_CODES.has(code)) {
    reason = `the SMTP server ${server} could not be reached (${error.originalCode ?? code})`;
  } else {
    reason = `sending through ${server} failed (${code}: ${detail})`;
  }
  const retryable =
    error.permanent === false ||
    (error.responseCode === undefined && (TRANSIENT_CODES.has(code) || code === 'EABORT'));
  // The library's own error stays out of the cause: its fields hold the SMTP dialogue.
  const cause = Object.assign(new Error(detail), { code });
  return {
    retryable,
    error: new HoldfastError('NOTIFY_FAILED', `E-mail notification was not sent: ${reason}.`, {
      cause,
    }),
  };
}
