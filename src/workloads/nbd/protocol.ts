/**
 * Numbers of the NBD protocol ("fixed newstyle" negotiation, simple replies) as the export
 * uses them, and the encoders of what the server sends. All integers are big-endian.
 */

/** Sent first by the server, then `IHAVEOPT`. */
export const NBDMAGIC = 0x4e42444d41474943n;
/** Opens the server's greeting and every option the client sends. */
export const IHAVEOPT = 0x49484156454f5054n;
/** Opens every option reply. */
export const OPTION_REPLY_MAGIC = 0x0003e889045565a9n;
/** Opens every request in transmission. */
export const REQUEST_MAGIC = 0x25609513;
/** Opens every simple reply in transmission. */
export const SIMPLE_REPLY_MAGIC = 0x67446698;
/** Opens every chunk of a structured reply. */
export const STRUCTURED_REPLY_MAGIC = 0x668e33ef;

/** Handshake flags of the server's greeting. */
export const HANDSHAKE_FIXED_NEWSTYLE = 1 << 0;
export const HANDSHAKE_NO_ZEROES = 1 << 1;
/** Client flags: the same two bits; any other bit set ends the connection. */
export const CLIENT_FLAGS_KNOWN = HANDSHAKE_FIXED_NEWSTYLE | HANDSHAKE_NO_ZEROES;

export const OPT = {
  EXPORT_NAME: 1,
  ABORT: 2,
  LIST: 3,
  STARTTLS: 5,
  INFO: 6,
  GO: 7,
  STRUCTURED_REPLY: 8,
} as const;

export const REP = {
  ACK: 1,
  SERVER: 2,
  INFO: 3,
  ERR_UNSUP: 0x80000001,
  ERR_INVALID: 0x80000003,
  ERR_UNKNOWN: 0x80000006,
  ERR_TOO_BIG: 0x80000009,
} as const;

export const INFO = { EXPORT: 0, NAME: 1, DESCRIPTION: 2, BLOCK_SIZE: 3 } as const;

/** Transmission flags: what the client may ask of an export. */
export const FLAG = {
  HAS_FLAGS: 1 << 0,
  READ_ONLY: 1 << 1,
  SEND_FLUSH: 1 << 2,
  CAN_MULTI_CONN: 1 << 8,
} as const;

/**
 * Read-only, and consistent across connections (nothing changes), so clients may open several.
 * FLUSH is offered because some clients send it regardless; it has nothing to do here.
 */
export const EXPORT_FLAGS = FLAG.HAS_FLAGS | FLAG.READ_ONLY | FLAG.SEND_FLUSH | FLAG.CAN_MULTI_CONN;

export const CMD = {
  READ: 0,
  WRITE: 1,
  DISC: 2,
  FLUSH: 3,
  TRIM: 4,
  WRITE_ZEROES: 6,
} as const;

/**
 * Numbers only the block-status client uses (block-status.ts). Kept out of OPT, REP and CMD: the
 * server derives the options it knows from `OPT` (negotiation.ts) and offers none of these, so
 * adding them there would change what it answers to them.
 */
export const OPT_SET_META_CONTEXT = 10;
export const REP_META_CONTEXT = 4;
export const CMD_BLOCK_STATUS = 7;

/** Chunk types of structured replies; those with bit 15 set are errors. */
export const REPLY_TYPE = {
  NONE: 0,
  OFFSET_DATA: 1,
  OFFSET_HOLE: 2,
  BLOCK_STATUS: 5,
  ERROR: 0x8001,
  ERROR_OFFSET: 0x8002,
} as const;

/** Chunk flag: the last chunk of its reply. */
export const REPLY_FLAG_DONE = 1;

/** Error numbers of replies (the protocol's own, equal to Linux errno values). */
export const ERRNO = { OK: 0, EPERM: 1, EIO: 5, EINVAL: 22 } as const;

/** The largest request served; also the maximum block size announced. */
export const MAX_REQUEST_LENGTH = 32 * 1024 * 1024;
/** The protocol's limit on names and other strings. */
export const MAX_STRING_LENGTH = 4096;
/** Block sizes announced: any alignment works, 4 KiB is what file systems read. */
export const BLOCK_SIZE = { minimum: 1, preferred: 4096, maximum: MAX_REQUEST_LENGTH } as const;

/** The size of a request header in transmission. */
export const REQUEST_HEADER_LENGTH = 28;

/** Magic, handshake flags: the first 18 bytes the server sends. */
export function greeting(): Buffer {
  const out = Buffer.alloc(18);
  out.writeBigUInt64BE(NBDMAGIC, 0);
  out.writeBigUInt64BE(IHAVEOPT, 8);
  out.writeUInt16BE(HANDSHAKE_FIXED_NEWSTYLE | HANDSHAKE_NO_ZEROES, 16);
  return out;
}

/** One option reply: magic, the option it answers, its type and data. */
export function optionReply(option: number, type: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(20);
  header.writeBigUInt64BE(OPTION_REPLY_MAGIC, 0);
  header.writeUInt32BE(option, 8);
  header.writeUInt32BE(type, 12);
  header.writeUInt32BE(data.length, 16);
  return Buffer.concat([header, data]);
}

/** NBD_REP_SERVER data: one export's name. */
export function serverEntry(name: string): Buffer {
  const bytes = Buffer.from(name, 'utf8');
  const out = Buffer.alloc(4 + bytes.length);
  out.writeUInt32BE(bytes.length, 0);
  bytes.copy(out, 4);
  return out;
}

/** NBD_INFO_EXPORT data: size and transmission flags. */
export function exportInfo(size: number): Buffer {
  const out = Buffer.alloc(12);
  out.writeUInt16BE(INFO.EXPORT, 0);
  out.writeBigUInt64BE(BigInt(size), 2);
  out.writeUInt16BE(EXPORT_FLAGS, 10);
  return out;
}

/** NBD_INFO_NAME data. */
export function nameInfo(name: string): Buffer {
  const type = Buffer.alloc(2);
  type.writeUInt16BE(INFO.NAME, 0);
  return Buffer.concat([type, Buffer.from(name, 'utf8')]);
}

/** NBD_INFO_BLOCK_SIZE data. */
export function blockSizeInfo(): Buffer {
  const out = Buffer.alloc(14);
  out.writeUInt16BE(INFO.BLOCK_SIZE, 0);
  out.writeUInt32BE(BLOCK_SIZE.minimum, 2);
  out.writeUInt32BE(BLOCK_SIZE.preferred, 6);
  out.writeUInt32BE(BLOCK_SIZE.maximum, 10);
  return out;
}

/** The answer to NBD_OPT_EXPORT_NAME: size, flags and, unless NO_ZEROES, 124 zero bytes. */
export function exportNameReply(size: number, noZeroes: boolean): Buffer {
  const out = Buffer.alloc(noZeroes ? 10 : 134);
  out.writeBigUInt64BE(BigInt(size), 0);
  out.writeUInt16BE(EXPORT_FLAGS, 8);
  return out;
}

/** A request in transmission, as read from its 28-byte header. */
export interface NbdRequest {
  readonly flags: number;
  readonly type: number;
  /** The client's opaque cookie, echoed in the reply; kept as bytes. */
  readonly handle: Buffer;
  readonly offset: number;
  readonly length: number;
}

/** Decodes a request header; `undefined` when its magic is wrong. */
export function parseRequest(header: Buffer): NbdRequest | undefined {
  if (header.readUInt32BE(0) !== REQUEST_MAGIC) return undefined;
  const offset = header.readBigUInt64BE(16);
  return {
    flags: header.readUInt16BE(4),
    type: header.readUInt16BE(6),
    handle: Buffer.from(header.subarray(8, 16)),
    // Offsets past 2^53 are past every export's end; saturating keeps the bounds check exact.
    offset: offset > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(offset),
    length: header.readUInt32BE(24),
  };
}
