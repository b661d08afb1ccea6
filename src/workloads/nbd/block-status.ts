import { HoldfastError, throwIfAborted } from '../../core/index.js';
import { appendRange } from '../../engine/index.js';
import type { ByteRange } from '../byte-ranges.js';
import {
  CMD_BLOCK_STATUS,
  OPT,
  OPT_SET_META_CONTEXT,
  REP_META_CONTEXT,
  REPLY_FLAG_DONE,
  REPLY_TYPE,
  SIMPLE_REPLY_MAGIC,
  STRUCTURED_REPLY_MAGIC,
} from './protocol.js';
import { go, greet, Link, PROTOCOL_ADVICE, request, string32, uint32 } from './client-link.js';

/** What {@link flaggedExtents} asks an NBD server. */
export interface MetaContextQuery {
  /** Path of the server's UNIX socket. */
  readonly socketPath: string;
  /** Export name. */
  readonly exportName: string;
  /** Metadata context, e.g. `qemu:dirty-bitmap:NAME` or `base:allocation`. */
  readonly context: string;
  /**
   * The status bits that select an extent (any of them set); default 1, bit 0: for a dirty
   * bitmap "dirty", for `base:allocation` "hole". Bit 1 of `base:allocation` is "reads as zeros".
   */
  readonly flags?: number;
  /** Gives up (SOURCE_UNREADABLE) after this long without progress; default 30 s. */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** The largest block status request: under the 32-bit length, and 1 MiB-aligned. */
const MAX_REQUEST = 2 ** 32 - 2 ** 20;
/** The spec allows one block status chunk per context and a closing one; the rest is margin. */
const MAX_CHUNKS_PER_REPLY = 16;
/** QEMU sends at most 1 MiB of extents per chunk; 64 MiB of them is a runaway server. */
const MAX_CHUNK_PAYLOAD = 64 * 1024 * 1024;
/** Extents are read this much at a time: a multiple of 8, within SocketReader's 1 MiB. */
const EXTENT_BATCH = 64 * 1024;

/**
 * Connects to the NBD server at `socketPath` (QEMU's, typically), negotiates structured replies
 * and the one metadata context `context`, and asks block status over the whole export. Resolves
 * with the export's size and the merged, sorted ranges whose status has one of `flags` set
 * (default bit 0: for a dirty bitmap, dirty; for `base:allocation`, a hole). Every failure is a HoldfastError
 * (SOURCE_UNREADABLE, or CANCELLED when `signal` aborts); the socket is always closed.
 */
export async function flaggedExtents(
  query: MetaContextQuery,
): Promise<{ size: number; ranges: ByteRange[] }> {
  throwIfAborted(query.signal);
  const link = new Link(query);
  try {
    const { size, contextId } = await negotiate(link, query);
    const ranges = await walk(link, size, contextId, query.flags ?? 1);
    await link.disconnect();
    return { size, ranges };
  } catch (error) {
    throw link.explain(error);
  } finally {
    link.destroy();
  }
}

/** Handshake, structured replies, the metadata context, NBD_OPT_GO: the size and context id. */
async function negotiate(
  link: Link,
  query: MetaContextQuery,
): Promise<{ size: number; contextId: number }> {
  await greet(link);
  link.sendOption(OPT.STRUCTURED_REPLY, Buffer.alloc(0));
  for await (const reply of link.optionReplies(OPT.STRUCTURED_REPLY, PROTOCOL_ADVICE))
    throw link.error(`answered structured replies with reply ${reply.type}`);
  const exportName = string32(query.exportName);
  link.sendOption(
    OPT_SET_META_CONTEXT,
    Buffer.concat([exportName, uint32(1), string32(query.context)]),
  );
  const exportAdvice = `Check that it serves an export named '${query.exportName}' and supports metadata contexts.`;
  let contextId: number | undefined;
  for await (const reply of link.optionReplies(OPT_SET_META_CONTEXT, exportAdvice)) {
    if (reply.type !== REP_META_CONTEXT || reply.data.length < 4)
      throw link.error(`answered NBD_OPT_SET_META_CONTEXT with reply ${reply.type}`);
    const name = reply.data.subarray(4).toString('utf8');
    if (name !== query.context)
      throw link.error(`answered the metadata context ${query.context} with another (${name})`);
    if (contextId !== undefined) throw link.error(`granted ${query.context} twice`);
    contextId = reply.data.readUInt32BE(0);
  }
  if (contextId === undefined)
    throw link.error(
      `does not offer the metadata context ${query.context} on export '${query.exportName}'`,
      'For a dirty bitmap, check that the bitmap exists on the disk and that the export was started with it (qemu-nbd -B NAME, or "bitmaps" in block-export-add).',
    );
  const size = await go(link, query.exportName, exportAdvice);
  return { size, contextId };
}

/** Block status from 0 to `size`, each request starting where the last one's extents ended. */
async function walk(
  link: Link,
  size: number,
  contextId: number,
  flags: number,
): Promise<ByteRange[]> {
  const ranges: ByteRange[] = [];
  let cookie = 0;
  for (let offset = 0; offset < size;) {
    link.stage = `while answering block status at offset ${offset}`;
    cookie += 1;
    const length = Math.min(size - offset, MAX_REQUEST);
    link.socket.write(request(CMD_BLOCK_STATUS, cookie, offset, length));
    const asked = { cookie, contextId, offset, size, flags };
    const end = await blockStatusReply(link, asked, ranges);
    // Zero-length extents would have the client ask the same question forever.
    if (end <= offset) throw link.error(`described no bytes at offset ${offset}`);
    offset = end;
  }
  return ranges;
}

interface Asked {
  readonly cookie: number;
  readonly contextId: number;
  readonly offset: number;
  readonly size: number;
  /** The status bits that select an extent. */
  readonly flags: number;
}

/** Reads one reply's chunks, adding flagged extents to `ranges`; returns where they end. */
async function blockStatusReply(link: Link, asked: Asked, ranges: ByteRange[]): Promise<number> {
  let end: number | undefined;
  for (let chunks = 1; chunks <= MAX_CHUNKS_PER_REPLY; chunks++) {
    const header = await link.read(16);
    const magic = header.readUInt32BE(0);
    if (magic === SIMPLE_REPLY_MAGIC && header.readUInt32BE(4) !== 0)
      throw link.error(`failed block status at ${asked.offset} (error ${header.readUInt32BE(4)})`);
    if (magic !== STRUCTURED_REPLY_MAGIC || header.readBigUInt64BE(8) !== BigInt(asked.cookie))
      throw link.error('sent a malformed reply to block status');
    const flags = header.readUInt16BE(4);
    const type = header.readUInt16BE(6);
    const length = (await link.read(4)).readUInt32BE(0);
    if ((type & 0x8000) !== 0) throw await chunkError(link, type, length, asked.offset);
    if (type === REPLY_TYPE.BLOCK_STATUS) {
      const described = await readExtents(link, length, asked, ranges);
      if (described !== undefined && end !== undefined)
        throw link.error(`described ${asked.offset} twice in one reply`);
      end ??= described;
    } else if (type !== REPLY_TYPE.NONE || length !== 0) {
      throw link.error(`answered block status with a chunk of type ${type}`);
    }
    if ((flags & REPLY_FLAG_DONE) !== 0) {
      if (end === undefined) throw link.error(`gave no status for ${asked.offset}`);
      return end;
    }
  }
  throw link.error(`sent more than ${MAX_CHUNKS_PER_REPLY} chunks in one reply`);
}

/** One BLOCK_STATUS chunk: where its extents end, or `undefined` for another context's. */
async function readExtents(
  link: Link,
  length: number,
  asked: Asked,
  ranges: ByteRange[],
): Promise<number | undefined> {
  if (length < 12 || (length - 4) % 8 !== 0 || length > MAX_CHUNK_PAYLOAD)
    throw link.error(`sent a block status chunk of ${length} bytes`);
  if ((await link.read(4)).readUInt32BE(0) !== asked.contextId) {
    await link.reader.skip(length - 4);
    return undefined;
  }
  let at = asked.offset;
  for (let left = length - 4; left > 0;) {
    const batch = await link.read(Math.min(left, EXTENT_BATCH));
    left -= batch.length;
    for (let i = 0; i < batch.length; i += 8) {
      const extent = batch.readUInt32BE(i);
      if (at + extent > asked.size)
        throw link.error(
          `described bytes up to ${at + extent}, past the export's end at ${asked.size}`,
        );
      if ((batch.readUInt32BE(i + 4) & asked.flags) !== 0 && extent > 0)
        appendRange(ranges, at, extent);
      at += extent;
    }
  }
  return at;
}

/** The failure an error chunk reports, with the server's message. */
async function chunkError(
  link: Link,
  type: number,
  length: number,
  offset: number,
): Promise<HoldfastError> {
  if (length < 6 || length > 6 + 0xffff + 8) return link.error(`sent a malformed error chunk`);
  const payload = await link.read(length);
  const message = payload.subarray(6, 6 + payload.readUInt16BE(4)).toString('utf8');
  const where =
    type === REPLY_TYPE.ERROR_OFFSET && length >= 14
      ? ` at ${payload.readBigUInt64BE(length - 8)}`
      : '';
  return link.error(
    `failed block status from ${offset}${where} (error ${payload.readUInt32BE(0)}${message ? `: ${message}` : ''})`,
    'Check its log; the disk or bitmap may be damaged or gone.',
  );
}
