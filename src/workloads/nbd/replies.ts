import { SIMPLE_REPLY_MAGIC, STRUCTURED_REPLY_MAGIC } from './protocol.js';

/**
 * Encodes the replies of transmission in the style the client negotiated. Structured replies
 * matter for reads: their header says how many bytes follow, where a simple reply leaves the
 * client to assume it got what it asked for (qemu 7 then waits for a full 512-byte sector at
 * the end of a disk whose size is not a multiple of 512).
 */
export interface ReplyEncoder {
  /** A command that succeeded without data (FLUSH). */
  done(handle: Buffer): Buffer;
  /** A failed command; structured replies carry `message` to the client too. */
  error(handle: Buffer, errno: number, message: string): Buffer;
  /** What precedes the `length` bytes of a successful read at `offset`. */
  dataHeader(handle: Buffer, offset: number, length: number): Buffer;
}

const FLAG_DONE = 1;
const TYPE_NONE = 0;
const TYPE_OFFSET_DATA = 1;
const TYPE_ERROR = (1 << 15) | 1;
/** Messages are for people reading logs; a short one leaves no doubt and costs nothing. */
const MAX_MESSAGE_BYTES = 256;

function simpleHeader(handle: Buffer, errno: number): Buffer {
  const out = Buffer.alloc(16);
  out.writeUInt32BE(SIMPLE_REPLY_MAGIC, 0);
  out.writeUInt32BE(errno, 4);
  handle.copy(out, 8);
  return out;
}

/** Magic, handle, length: every reply's 16 bytes, then the 4-byte error number. */
export const SIMPLE_REPLIES: ReplyEncoder = {
  done: (handle) => simpleHeader(handle, 0),
  error: (handle, errno) => simpleHeader(handle, errno),
  dataHeader: (handle) => simpleHeader(handle, 0),
};

function chunk(handle: Buffer, type: number, payload: Buffer, dataLength = 0): Buffer {
  const out = Buffer.alloc(20 + payload.length);
  out.writeUInt32BE(STRUCTURED_REPLY_MAGIC, 0);
  // Every reply is a single chunk, so each is also the last.
  out.writeUInt16BE(FLAG_DONE, 4);
  out.writeUInt16BE(type, 6);
  handle.copy(out, 8);
  out.writeUInt32BE(payload.length + dataLength, 16);
  payload.copy(out, 20);
  return out;
}

/** One chunk per reply, flagged DONE: NONE, ERROR with a message, or OFFSET_DATA. */
export const STRUCTURED_REPLIES: ReplyEncoder = {
  done: (handle) => chunk(handle, TYPE_NONE, Buffer.alloc(0)),
  error: (handle, errno, message) => {
    const text = Buffer.from(shortened(message), 'utf8');
    const payload = Buffer.alloc(6 + text.length);
    payload.writeUInt32BE(errno, 0);
    payload.writeUInt16BE(text.length, 4);
    text.copy(payload, 6);
    return chunk(handle, TYPE_ERROR, payload);
  },
  dataHeader: (handle, offset, length) => {
    const payload = Buffer.alloc(8);
    payload.writeBigUInt64BE(BigInt(offset), 0);
    return chunk(handle, TYPE_OFFSET_DATA, payload, length);
  },
};

/** At most MAX_MESSAGE_BYTES of UTF-8, cut between characters (the protocol wants valid UTF-8). */
function shortened(message: string): string {
  let text = message;
  while (Buffer.byteLength(text, 'utf8') > MAX_MESSAGE_BYTES) text = text.slice(0, -1);
  return text;
}
