import { connect, type Socket } from 'node:net';
import { HoldfastError } from '../../core/index.js';
import {
  CLIENT_FLAGS_KNOWN,
  CMD,
  HANDSHAKE_FIXED_NEWSTYLE,
  IHAVEOPT,
  INFO,
  NBDMAGIC,
  OPT,
  OPT_SET_META_CONTEXT,
  OPTION_REPLY_MAGIC,
  REP,
  REQUEST_MAGIC,
} from './protocol.js';
import { ConnectionClosed, SocketReader } from './socket-reader.js';

/** Where a {@link Link} connects, and how long it waits. */
export interface LinkTarget {
  /** Path of the server's UNIX socket. */
  readonly socketPath: string;
  /** Gives up (SOURCE_UNREADABLE) after this long without progress; default 30 s. */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** Names of the options sent, for messages. */
const OPTION_NAMES: Readonly<Record<number, string>> = {
  [OPT.STRUCTURED_REPLY]: 'NBD_OPT_STRUCTURED_REPLY',
  [OPT_SET_META_CONTEXT]: 'NBD_OPT_SET_META_CONTEXT',
  [OPT.GO]: 'NBD_OPT_GO',
};
/** Option replies are a few dozen bytes; far longer ones come from no sane server. */
const MAX_OPTION_REPLY = 64 * 1024;
/** Replies the client reads to one option: bounds a server that never sends its ACK. */
const MAX_OPTION_REPLIES = 64;
/**
 * The connection: exact reads, an idle timeout, and the errors of one server. A timeout or an
 * abort destroys the socket, so whatever read is waiting rejects at once and {@link explain}
 * reports why.
 */
export class Link {
  /** Where the conversation is, for the message when the server hangs up. */
  stage = 'during the handshake';
  readonly socket: Socket;
  readonly reader: SocketReader;
  private readonly closed: Promise<void>;
  private failure: HoldfastError | undefined;
  private socketError: Error | undefined;
  private connected = false;
  private readonly onAbort = (): void =>
    this.stop(new HoldfastError('CANCELLED', 'Reading block status was cancelled.'));

  constructor(private readonly query: LinkTarget) {
    // At least 1: Node's socket timeout of 0 means none at all.
    const timeoutMs = Math.max(1, query.timeoutMs ?? 30_000);
    this.socket = connect({ path: query.socketPath });
    this.reader = new SocketReader(this.socket);
    this.closed = new Promise((resolve) => this.socket.once('close', () => resolve()));
    this.socket.once('connect', () => (this.connected = true));
    this.socket.on('error', (error) => (this.socketError ??= error));
    // Idle time, reset by every byte either way: a slow server on a large disk is fine.
    this.socket.setTimeout(timeoutMs, () => {
      const what = `sent nothing for ${timeoutMs} ms ${this.stage}`;
      this.stop(this.error(what, 'Check whether it hangs, or allow it longer (timeoutMs).'));
    });
    query.signal?.addEventListener('abort', this.onAbort);
  }

  read(length: number): Promise<Buffer> {
    return this.reader.read(length);
  }

  sendOption(option: number, data: Buffer): void {
    const header = Buffer.alloc(16);
    header.writeBigUInt64BE(IHAVEOPT, 0);
    header.writeUInt32BE(option, 8);
    header.writeUInt32BE(data.length, 12);
    this.socket.write(Buffer.concat([header, data]));
  }

  /** The replies to `option` up to its ACK (not yielded); an error reply throws with `advice`. */
  async *optionReplies(
    option: number,
    advice: string,
  ): AsyncGenerator<{ type: number; data: Buffer }> {
    const name = OPTION_NAMES[option] ?? `option ${option}`;
    for (let count = 0; count < MAX_OPTION_REPLIES; count++) {
      const header = await this.read(20);
      const length = header.readUInt32BE(16);
      if (header.readBigUInt64BE(0) !== OPTION_REPLY_MAGIC || header.readUInt32BE(8) !== option)
        throw this.error(`sent a malformed reply to ${name}`);
      if (length > MAX_OPTION_REPLY) throw this.error(`sent a ${length}-byte reply to ${name}`);
      const reply = { type: header.readUInt32BE(12), data: await this.read(length) };
      if (reply.type === REP.ACK) return;
      if (reply.type >= 0x80000000) {
        const why = reply.data.length > 0 ? `: ${reply.data.toString('utf8')}` : '';
        const code = `error 0x${reply.type.toString(16)}${why}`;
        throw this.error(`refused ${name} (${code})`, advice);
      }
      yield reply;
    }
    throw this.error(`sent more than ${MAX_OPTION_REPLIES} replies to ${name}`);
  }

  /** A SOURCE_UNREADABLE error about this server. */
  error(what: string, advice = PROTOCOL_ADVICE, cause?: unknown): HoldfastError {
    const message = `The NBD server at ${this.query.socketPath} ${what}. ${advice}`;
    return new HoldfastError('SOURCE_UNREADABLE', message, { cause });
  }

  /** Sends NBD_CMD_DISC and waits until it is written (or the socket has gone). */
  async disconnect(): Promise<void> {
    this.stage = 'while disconnecting';
    const finished = new Promise<void>((resolve) =>
      this.socket.end(request(CMD.DISC, 0, 0), resolve),
    );
    await Promise.race([finished, this.closed]);
  }

  /** The HoldfastError to report for `error`, thrown while talking to the server. */
  explain(error: unknown): HoldfastError {
    if (this.failure) return this.failure;
    if (error instanceof HoldfastError) return error;
    const cause = this.socketError ?? error;
    const detail = this.socketError ? `: ${this.socketError.message}` : '';
    if (!this.connected) {
      const advice = 'Check that the server is running and that this path is its socket.';
      return this.error(`could not be reached${detail}`, advice, cause);
    }
    if (error instanceof ConnectionClosed) {
      const advice = 'Check that it is still running, and its log.';
      return this.error(`closed the connection ${this.stage}${detail}`, advice, cause);
    }
    return this.error(`failed ${this.stage}${detail}`, PROTOCOL_ADVICE, cause);
  }

  destroy(): void {
    this.query.signal?.removeEventListener('abort', this.onAbort);
    this.socket.destroy();
  }

  private stop(failure: HoldfastError): void {
    this.failure ??= failure;
    this.socket.destroy();
  }
}

export const PROTOCOL_ADVICE =
  'It does not follow the NBD protocol as expected; check its version and log (QEMU 7.2 is known to work).';

/** A transmission request header. */
export function request(type: number, cookie: number, offset: number, length = 0): Buffer {
  const out = Buffer.alloc(28);
  out.writeUInt32BE(REQUEST_MAGIC, 0);
  out.writeUInt16BE(type, 6);
  out.writeBigUInt64BE(BigInt(cookie), 8);
  out.writeBigUInt64BE(BigInt(offset), 16);
  out.writeUInt32BE(length, 24);
  return out;
}

export function uint32(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(value, 0);
  return out;
}

/** A string as the protocol sends it: its 32-bit byte length, then UTF-8. */
export function string32(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  return Buffer.concat([uint32(bytes.length), bytes]);
}

/** Reads the server's greeting and answers with the known flags it offered. */
export async function greet(link: Link): Promise<void> {
  const greeting = await link.read(18);
  const serverFlags = greeting.readUInt16BE(16);
  if (greeting.readBigUInt64BE(0) !== NBDMAGIC || greeting.readBigUInt64BE(8) !== IHAVEOPT)
    throw link.error('did not greet as an NBD server', 'Check that the path is its socket.');
  if ((serverFlags & HANDSHAKE_FIXED_NEWSTYLE) === 0)
    throw link.error('does not speak the fixed newstyle protocol');
  // Only flags the server offered: setting any other makes it hang up.
  link.socket.write(uint32(serverFlags & CLIENT_FLAGS_KNOWN));
}

/** NBD_OPT_GO for `exportName`: enters transmission; returns the export's size. */
export async function go(link: Link, exportName: string, advice: string): Promise<number> {
  link.sendOption(OPT.GO, Buffer.concat([string32(exportName), Buffer.alloc(2)]));
  let size: bigint | undefined;
  for await (const reply of link.optionReplies(OPT.GO, advice)) {
    if (reply.type !== REP.INFO) throw link.error(`answered NBD_OPT_GO with reply ${reply.type}`);
    if (reply.data.length >= 12 && reply.data.readUInt16BE(0) === INFO.EXPORT)
      size = reply.data.readBigUInt64BE(2);
  }
  if (size === undefined) throw link.error('did not say the export size');
  if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw link.error(`announced a size of ${size} bytes`);
  return Number(size);
}
