import type { Socket } from 'node:net';

/** Rejects a read once the peer has gone and too few bytes are left; sessions end quietly on it. */
export class ConnectionClosed extends Error {
  override readonly name = 'ConnectionClosed';
  constructor() {
    super('The NBD client closed the connection.');
  }
}

/** How far ahead of the parser the reader buffers before it pauses the socket. */
const HIGH_WATER = 1024 * 1024;

/**
 * Exact-length reads from a socket for a sequential parser: `read(n)` resolves with the next `n`
 * bytes however TCP split or merged them. It buffers at most about 1 MiB ahead and pauses the
 * socket beyond that, so a client sending faster than the server answers is held back by TCP
 * flow control rather than by the server's memory. One read at a time.
 */
export class SocketReader {
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  private closed = false;
  private waiter:
    { length: number; resolve: (data: Buffer) => void; reject: (error: Error) => void } | undefined;

  constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      this.serveWaiter();
      if (this.buffered >= HIGH_WATER) socket.pause();
    });
    socket.on('close', () => {
      this.closed = true;
      this.serveWaiter();
    });
  }

  /** The next `length` bytes (at most 1 MiB); rejects with {@link ConnectionClosed} at the end. */
  read(length: number): Promise<Buffer> {
    if (this.waiter) throw new Error('SocketReader: one read at a time');
    if (length > HIGH_WATER) throw new RangeError(`SocketReader: ${length} bytes is too many`);
    return new Promise((resolve, reject) => {
      this.waiter = { length, resolve, reject };
      this.serveWaiter();
    });
  }

  /** Discards the next `length` bytes as they arrive, never holding more than 1 MiB of them. */
  async skip(length: number): Promise<void> {
    for (let left = length; left > 0;) {
      const piece = Math.min(left, HIGH_WATER);
      await this.read(piece);
      left -= piece;
    }
  }

  private serveWaiter(): void {
    const waiter = this.waiter;
    if (!waiter) return;
    if (this.buffered >= waiter.length) {
      this.waiter = undefined;
      waiter.resolve(this.take(waiter.length));
    } else if (this.closed) {
      this.waiter = undefined;
      waiter.reject(new ConnectionClosed());
    }
    if (this.buffered < HIGH_WATER && !this.closed && this.socket.isPaused()) this.socket.resume();
  }

  private take(length: number): Buffer {
    const out = Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const head = this.chunks[0]!;
      const used = Math.min(head.length, length - filled);
      head.copy(out, filled, 0, used);
      filled += used;
      if (used === head.length) this.chunks.shift();
      else this.chunks[0] = head.subarray(used);
    }
    this.buffered -= length;
    return out;
  }
}
