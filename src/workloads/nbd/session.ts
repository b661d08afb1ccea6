import type { Socket } from 'node:net';
import type { DiskReader } from '../partition-table.js';
import { negotiate } from './negotiation.js';
import { ConnectionClosed, SocketReader } from './socket-reader.js';
import { transmit, type NbdFailedRead } from './transmission.js';

/**
 * Receives what goes wrong while serving: with `read`, the export's DiskReader failed that read
 * (the client got EIO); without it, the connection failed unexpectedly and was closed. What it
 * throws is dropped.
 */
export type NbdErrorHandler = (error: unknown, read?: NbdFailedRead) => void;

/** How long a client may take to choose an export: a silent connection is dropped after it. */
const NEGOTIATION_TIMEOUT_MS = 30_000;
/** How long a closing connection may take to hand its last bytes to a client that stalls. */
const CLOSE_TIMEOUT_MS = 5_000;

/**
 * Serves one client from greeting to close. Resolves when the connection is over and no read
 * of a DiskReader is still running; never rejects. `onError` must not throw.
 */
export async function serveConnection(
  socket: Socket,
  exports: ReadonlyMap<string, DiskReader>,
  onError: NbdErrorHandler,
): Promise<void> {
  socket.setNoDelay(true);
  // Resets and broken pipes are how clients leave; the 'close' that follows ends the session.
  socket.on('error', () => {});
  const reader = new SocketReader(socket);
  socket.setTimeout(NEGOTIATION_TIMEOUT_MS, () => socket.destroy());
  try {
    const chosen = await negotiate(socket, reader, exports);
    if (chosen) {
      // Mounted disks sit idle for hours between reads; only haggling is timed.
      socket.setTimeout(0);
      await transmit(socket, reader, chosen, onError);
    }
  } catch (error) {
    if (!(error instanceof ConnectionClosed)) onError(error);
  } finally {
    closeGently(socket);
  }
}

/** Lets queued replies (an ABORT's ACK, answers to reads) reach the client, then closes. */
function closeGently(socket: Socket): void {
  if (socket.destroyed) return;
  const timer = setTimeout(() => socket.destroy(), CLOSE_TIMEOUT_MS);
  timer.unref();
  socket.end(() => {
    clearTimeout(timer);
    socket.destroy();
  });
}
