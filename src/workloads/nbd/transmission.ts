import type { Socket } from 'node:net';
import type { ChosenExport } from './negotiation.js';
import {
  CMD,
  ERRNO,
  MAX_REQUEST_LENGTH,
  REQUEST_HEADER_LENGTH,
  parseRequest,
  type NbdRequest,
} from './protocol.js';
import { SIMPLE_REPLIES, STRUCTURED_REPLIES, type ReplyEncoder } from './replies.js';
import type { SocketReader } from './socket-reader.js';

/** Where a failed read of an export was; the client got EIO for it. */
export interface NbdFailedRead {
  readonly exportName: string;
  readonly offset: number;
  readonly length: number;
}

/** Receives the errors of the export's DiskReader; never throws (startNbdExport guards it). */
type ReadErrorHandler = (error: unknown, read: NbdFailedRead) => void;

/** Reads served at once per connection: enough to keep a disk busy, few enough to be fair. */
const MAX_READS_IN_FLIGHT = 64;
/**
 * Bytes a connection may hold for its client: reads in flight plus replies the client has not
 * taken yet. Beyond it the next request waits, so a client that pipelines large reads and never
 * reads the answers costs the server this much memory and no more.
 */
const MAX_PENDING_BYTES = 2 * MAX_REQUEST_LENGTH;

/**
 * The transmission phase: reads requests and answers each with a simple or (when negotiated) a
 * structured reply of one chunk. Reads run concurrently and are answered in the order they
 * finish, each carrying its request's handle; everything that would change the export is
 * refused with EPERM. Resolves once the client sent
 * NBD_CMD_DISC (after the reads in flight are answered) or a request with a wrong magic (the
 * stream cannot be trusted after that; the caller closes it), and rejects with
 * `ConnectionClosed` when the client goes away.
 */
export async function transmit(
  socket: Socket,
  reader: SocketReader,
  chosen: ChosenExport,
  onError: ReadErrorHandler,
): Promise<void> {
  const replies = chosen.structuredReplies ? STRUCTURED_REPLIES : SIMPLE_REPLIES;
  const send = (reply: Buffer): void => void (socket.writable && socket.write(reply));
  const inFlight = new InFlightReads(socket);
  try {
    for (;;) {
      const request = parseRequest(await reader.read(REQUEST_HEADER_LENGTH));
      if (!request) return;
      if (request.type === CMD.DISC) return;
      if (request.type === CMD.WRITE) {
        // The payload follows the header whatever the answer; it is discarded unbuffered so
        // the next header is read where it starts.
        await reader.skip(request.length);
      }
      const refusal = refusalOf(request, chosen.disk.size);
      const reading = !refusal && request.type === CMD.READ;
      await inFlight.roomFor(reading ? request.length : 0);
      if (refusal) send(replies.error(request.handle, refusal.errno, refusal.message));
      else if (!reading) send(replies.done(request.handle));
      else inFlight.track(serveRead(socket, replies, request, chosen, onError), request.length);
    }
  } finally {
    // The caller may close the DiskReader once this settles: no read may still be using it.
    await inFlight.settled();
  }
}

/** Why a request is refused, or `undefined` for a read to serve or a flush. */
function refusalOf(
  request: NbdRequest,
  size: number,
): { errno: number; message: string } | undefined {
  switch (request.type) {
    case CMD.READ:
      if (request.length === 0 || request.length > MAX_REQUEST_LENGTH)
        return { errno: ERRNO.EINVAL, message: `a read must be 1 to ${MAX_REQUEST_LENGTH} bytes` };
      if (request.offset + request.length > size)
        return { errno: ERRNO.EINVAL, message: `the read ends past the export's ${size} bytes` };
      return undefined;
    case CMD.FLUSH:
      return undefined;
    case CMD.WRITE:
    case CMD.TRIM:
    case CMD.WRITE_ZEROES:
      return { errno: ERRNO.EPERM, message: 'the export is read-only' };
    default:
      return { errno: ERRNO.EINVAL, message: `command ${request.type} is not supported` };
  }
}

async function serveRead(
  socket: Socket,
  replies: ReplyEncoder,
  request: NbdRequest,
  chosen: ChosenExport,
  onError: ReadErrorHandler,
): Promise<void> {
  const { offset, length, handle } = request;
  let data: Buffer;
  try {
    data = await chosen.disk.read(offset, length);
    // A short or long buffer would put the stream out of step with the client.
    if (data.length !== length)
      throw new Error(`the disk returned ${data.length} bytes for a ${length}-byte read`);
  } catch (error) {
    onError(error, { exportName: chosen.name, offset, length });
    if (socket.writable)
      socket.write(replies.error(handle, ERRNO.EIO, 'the disk could not be read'));
    return;
  }
  if (!socket.writable) return;
  socket.cork();
  socket.write(replies.dataHeader(handle, offset, length));
  socket.write(data);
  socket.uncork();
}

/** Counts the reads being served on one connection and makes new requests wait for room. */
class InFlightReads {
  private count = 0;
  private bytes = 0;
  private wake: (() => void) | undefined;

  constructor(private readonly socket: Socket) {
    socket.on('drain', () => this.notify());
    socket.on('close', () => this.notify());
  }

  /** Waits until a request needing `length` more bytes fits; returns at once when closed. */
  async roomFor(length: number): Promise<void> {
    while (!this.socket.destroyed && this.full(length)) await this.change();
  }

  track(read: Promise<void>, length: number): void {
    this.count += 1;
    this.bytes += length;
    const done = (): void => {
      this.count -= 1;
      this.bytes -= length;
      this.notify();
    };
    void read.then(done, done);
  }

  async settled(): Promise<void> {
    while (this.count > 0) await this.change();
  }

  private full(length: number): boolean {
    if (this.count >= MAX_READS_IN_FLIGHT) return true;
    const queued = this.socket.writableLength;
    // With nothing in flight and nothing queued, one request always fits, however large.
    if (this.count === 0 && queued === 0) return false;
    return this.bytes + queued + length > MAX_PENDING_BYTES;
  }

  private change(): Promise<void> {
    return new Promise((resolve) => (this.wake = resolve));
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
