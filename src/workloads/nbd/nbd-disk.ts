import { HoldfastError } from '../../core/index.js';
import type { OpenDisk } from '../disk-reader.js';
import { go, greet, Link, request, type LinkTarget } from './client-link.js';
import { CMD, SIMPLE_REPLY_MAGIC } from './protocol.js';

/** Bytes per NBD_CMD_READ: within what the socket reader hands over at once. */
const REQUEST_BYTES = 1024 * 1024;

/**
 * Opens an NBD export (QEMU's, on a UNIX socket) as a disk to read: the guest's bytes as QEMU
 * sees them, whatever the image format and whatever QEMU holds in memory. Simple replies only
 * (no structured replies are asked for), one request at a time: reads are few and local.
 */
export async function openNbdDisk(
  target: LinkTarget & { readonly exportName: string },
): Promise<OpenDisk> {
  const link = new Link(target);
  let size: number;
  try {
    await greet(link);
    size = await go(
      link,
      target.exportName,
      `Check that it serves an export named '${target.exportName}'.`,
    );
  } catch (error) {
    link.destroy();
    throw link.explain(error);
  }
  let turn: Promise<unknown> = Promise.resolve();
  let cookie = 0;
  let closed = false;
  const readPart = async (into: Buffer, offset: number): Promise<void> => {
    const length = into.byteLength;
    cookie += 1;
    link.stage = `while reading ${length} bytes at ${offset}`;
    link.socket.write(request(CMD.READ, cookie, offset, length));
    const header = await link.read(16);
    if (
      header.readUInt32BE(0) !== SIMPLE_REPLY_MAGIC ||
      header.readBigUInt64BE(8) !== BigInt(cookie)
    )
      throw link.error(`sent a malformed reply ${link.stage}`);
    const errno = header.readUInt32BE(4);
    if (errno !== 0)
      throw link.error(
        `failed a read with error ${errno} ${link.stage}`,
        'Check QEMU and the disk under it.',
      );
    (await link.read(length)).copy(into, 0);
  };
  const read = async (offset: number, length: number): Promise<Buffer> => {
    if (closed) throw new HoldfastError('INTERNAL', 'The NBD disk is closed.');
    if (offset < 0 || length < 0 || offset + length > size)
      throw new HoldfastError(
        'SOURCE_UNREADABLE',
        `Read of ${length} bytes at ${offset} is outside the ${size}-byte export '${target.exportName}'.`,
      );
    const buffer = Buffer.allocUnsafe(length);
    for (let at = 0; at < length; at += REQUEST_BYTES)
      await readPart(buffer.subarray(at, Math.min(length, at + REQUEST_BYTES)), offset + at);
    return buffer;
  };
  return {
    size,
    // One request at a time on the one connection: callers may ask several reads at once.
    read: (offset, length) => {
      const result = turn.then(() => read(offset, length));
      turn = result.catch(() => undefined);
      return result.catch((error: unknown) => {
        throw link.explain(error);
      });
    },
    close: async () => {
      if (closed) return;
      closed = true;
      await turn;
      try {
        await link.disconnect();
      } finally {
        link.destroy();
      }
    },
  };
}
