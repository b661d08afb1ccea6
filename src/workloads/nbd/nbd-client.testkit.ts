import { connect, type Socket } from 'node:net';
import {
  IHAVEOPT,
  INFO,
  OPT,
  OPTION_REPLY_MAGIC,
  REP,
  REQUEST_MAGIC,
  SIMPLE_REPLY_MAGIC,
  STRUCTURED_REPLY_MAGIC,
} from './protocol.js';
import { SocketReader } from './socket-reader.js';

/** One reply of transmission as a test sees it. */
export interface TestReply {
  readonly handle: bigint;
  readonly error: number;
  readonly data?: Buffer;
  /** Structured replies only: the chunk's type and flags, and an error's message. */
  readonly type?: number;
  readonly flags?: number;
  readonly message?: string;
}

/**
 * A hand-driven NBD client for tests: it sends exactly the bytes a test asks for, well-formed or
 * hostile, and decodes what the server answers. Reads at most 1 MiB per reply.
 */
export class TestNbdClient {
  /** Resolves when the server (or the test) has closed the connection. */
  readonly closed: Promise<void>;
  private readonly reader: SocketReader;

  private constructor(readonly socket: Socket) {
    this.reader = new SocketReader(socket);
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => {});
  }

  static connect(port: number, host = '127.0.0.1'): Promise<TestNbdClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ port, host }, () => resolve(new TestNbdClient(socket)));
      socket.once('error', reject);
    });
  }

  read(length: number): Promise<Buffer> {
    return this.reader.read(length);
  }

  /** Reads the server's greeting and answers with `clientFlags` (default: both known flags). */
  async greet(clientFlags = 3): Promise<{ magic: string; handshakeFlags: number }> {
    const greeting = await this.read(18);
    if (greeting.readBigUInt64BE(8) !== IHAVEOPT) throw new Error('no IHAVEOPT in the greeting');
    this.send(uint32(clientFlags));
    return {
      magic: greeting.subarray(0, 8).toString('latin1'),
      handshakeFlags: greeting.readUInt16BE(16),
    };
  }

  sendOption(option: number, data: Buffer = Buffer.alloc(0), magic = IHAVEOPT): void {
    const header = Buffer.alloc(16);
    header.writeBigUInt64BE(magic, 0);
    header.writeUInt32BE(option, 8);
    header.writeUInt32BE(data.length, 12);
    this.send(Buffer.concat([header, data]));
  }

  async optionReply(): Promise<{ option: number; type: number; data: Buffer }> {
    const header = await this.read(20);
    if (header.readBigUInt64BE(0) !== OPTION_REPLY_MAGIC) throw new Error('bad option reply magic');
    const data = await this.read(header.readUInt32BE(16));
    return { option: header.readUInt32BE(8), type: header.readUInt32BE(12), data };
  }

  /** Greets, optionally asks for structured replies, and enters transmission with NBD_OPT_GO. */
  async open(name: string, structured = false): Promise<{ size: number; flags: number }> {
    await this.greet();
    if (structured) {
      this.sendOption(OPT.STRUCTURED_REPLY);
      const reply = await this.optionReply();
      if (reply.type !== REP.ACK) throw new Error(`structured replies refused (${reply.type})`);
    }
    this.sendOption(OPT.GO, goData(name));
    let size = -1;
    let flags = -1;
    for (;;) {
      const reply = await this.optionReply();
      if (reply.type === REP.ACK) return { size, flags };
      if (reply.type !== REP.INFO)
        throw new Error(`NBD_OPT_GO failed with reply type ${reply.type}`);
      if (reply.data.readUInt16BE(0) === INFO.EXPORT) {
        size = Number(reply.data.readBigUInt64BE(2));
        flags = reply.data.readUInt16BE(10);
      }
    }
  }

  /** The bytes of a request header, for a test to send whole, split or with others. */
  static request(type: number, handle: bigint, offset: bigint | number, length: number): Buffer {
    const out = Buffer.alloc(28);
    out.writeUInt32BE(REQUEST_MAGIC, 0);
    out.writeUInt16BE(type, 6);
    out.writeBigUInt64BE(handle, 8);
    out.writeBigUInt64BE(BigInt(offset), 16);
    out.writeUInt32BE(length, 24);
    return out;
  }

  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** The next simple reply; `readLengths` says how much data follows a successful read. */
  async simpleReply(readLengths: ReadonlyMap<bigint, number> = new Map()): Promise<TestReply> {
    const header = await this.read(16);
    if (header.readUInt32BE(0) !== SIMPLE_REPLY_MAGIC) throw new Error('bad simple reply magic');
    const error = header.readUInt32BE(4);
    const handle = header.readBigUInt64BE(8);
    const length = readLengths.get(handle);
    if (error !== 0 || length === undefined) return { handle, error };
    return { handle, error, data: await this.read(length) };
  }

  /** The next structured reply chunk. */
  async structuredReply(): Promise<TestReply> {
    const header = await this.read(20);
    if (header.readUInt32BE(0) !== STRUCTURED_REPLY_MAGIC)
      throw new Error('bad structured reply magic');
    const flags = header.readUInt16BE(4);
    const type = header.readUInt16BE(6);
    const handle = header.readBigUInt64BE(8);
    const payload = await this.read(header.readUInt32BE(16));
    // Types: 1 is OFFSET_DATA (offset, then data); those with the top bit set are errors.
    if (type === 1) return { handle, error: 0, type, flags, data: payload.subarray(8) };
    if (type & 0x8000) {
      const message = payload.subarray(6, 6 + payload.readUInt16BE(4)).toString('utf8');
      return { handle, error: payload.readUInt32BE(0), type, flags, message };
    }
    return { handle, error: 0, type, flags };
  }

  /** True when the server closes the connection within `ms`. */
  async closedWithin(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
    const result = await Promise.race([this.closed.then(() => true), timeout]);
    clearTimeout(timer);
    return result;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** The data of NBD_OPT_GO / NBD_OPT_INFO for `name`, asking for no particular information. */
export function goData(name: string, infoRequests: readonly number[] = []): Buffer {
  const bytes = Buffer.from(name, 'utf8');
  const out = Buffer.alloc(6 + bytes.length + 2 * infoRequests.length);
  out.writeUInt32BE(bytes.length, 0);
  bytes.copy(out, 4);
  out.writeUInt16BE(infoRequests.length, 4 + bytes.length);
  infoRequests.forEach((type, i) => out.writeUInt16BE(type, 6 + bytes.length + 2 * i));
  return out;
}

function uint32(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(value, 0);
  return out;
}
