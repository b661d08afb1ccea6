import { createServer, isIP, type Socket } from 'node:net';
import { HoldfastError, describeError, throwIfAborted } from '../../core/index.js';
import type { DiskReader } from '../partition-table.js';
import { MAX_STRING_LENGTH } from './protocol.js';
import { serveConnection, type NbdErrorHandler } from './session.js';

/** What {@link startNbdExport} serves, and where. */
export interface NbdExportOptions {
  /** The disks, by export name; or one disk and its name. */
  readonly disks:
    ReadonlyMap<string, DiskReader> | { readonly name: string; readonly disk: DiskReader };
  /** The address to listen on: loopback unless a specific address is given. Never a wildcard. */
  readonly host?: string;
  /** 0 (the default) lets the system pick a free port; see {@link NbdExport.port}. */
  readonly port?: number;
  /** Clients served at once; more are disconnected at once. Default 16. */
  readonly maxConnections?: number;
  /**
   * Told about failed reads of a DiskReader (a damaged backup: the client got EIO) and about
   * connections that failed unexpectedly. The export goes on serving either way.
   */
  readonly onError?: NbdErrorHandler;
  /** Aborting it closes the export, as {@link NbdExport.close} does. */
  readonly signal?: AbortSignal;
}

/** A running export. */
export interface NbdExport {
  readonly host: string;
  readonly port: number;
  /** The `nbd://` URI of one export, as nbdinfo, nbdcopy, qemu-img and nbdfuse take it. */
  url(name: string): string;
  /** Stops listening, ends every connection, and resolves once no DiskReader read is running. */
  close(): Promise<void>;
}

const DEFAULT_HOST = '127.0.0.1';
const WILDCARDS = new Set(['0.0.0.0', '::', '0:0:0:0:0:0:0:0', '']);

/**
 * Serves disks read-only over the NBD protocol (fixed newstyle; simple or structured replies,
 * as the client asks), so that an
 * administrator can attach a backed-up disk with `nbd-client`, `qemu-nbd` or `nbdfuse` and mount
 * its file systems. The disks are never written: the export says READ_ONLY and refuses every
 * write with EPERM. There is no authentication or TLS, which is why it listens on loopback
 * unless told otherwise (docs/disks-nbd.md).
 */
export async function startNbdExport(options: NbdExportOptions): Promise<NbdExport> {
  throwIfAborted(options.signal);
  const exports = exportTable(options.disks);
  const host = options.host ?? DEFAULT_HOST;
  if (WILDCARDS.has(host))
    throw usage(
      `${host || 'an empty host'} would expose the disks on every network: give one address, e.g. 127.0.0.1`,
    );
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw usage(`port ${port} is not a TCP port`);
  const maxConnections = options.maxConnections ?? 16;
  if (!Number.isInteger(maxConnections) || maxConnections < 1)
    throw usage(`maxConnections ${maxConnections} is not a positive whole number`);
  const onError = guarded(options.onError);
  const sockets = new Set<Socket>();
  const sessions = new Set<Promise<void>>();

  const server = createServer((socket) => {
    sockets.add(socket);
    const session = serveConnection(socket, exports, onError).finally(() => {
      sockets.delete(socket);
      sessions.delete(session);
    });
    sessions.add(session);
  });
  server.maxConnections = maxConnections;
  await listen(server, host, port);
  // Failures after listening (accept running out of descriptors, say) must not crash the host.
  server.on('error', (error) => onError(error));
  const address = server.address();
  const boundPort = typeof address === 'object' && address ? address.port : port;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      options.signal?.removeEventListener('abort', onAbort);
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await Promise.all([stopped, ...sessions]);
    })();
    return closing;
  };
  const onAbort = (): void => void close();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) {
    await close();
    throwIfAborted(options.signal);
  }

  const urlHost = isIP(host) === 6 ? `[${host}]` : host;
  return {
    host,
    port: boundPort,
    url: (name) => `nbd://${urlHost}:${boundPort}/${encodeURIComponent(name)}`,
    close,
  };
}

function exportTable(disks: NbdExportOptions['disks']): ReadonlyMap<string, DiskReader> {
  const table = 'disk' in disks ? new Map([[disks.name, disks.disk]]) : disks;
  if (table.size === 0) throw usage('there is no disk to export');
  for (const [name, disk] of table) {
    const bytes = Buffer.byteLength(name, 'utf8');
    if (bytes === 0 || bytes > MAX_STRING_LENGTH)
      throw usage(`export name "${name}" must have 1 to ${MAX_STRING_LENGTH} bytes`);
    if (!Number.isSafeInteger(disk.size) || disk.size < 0)
      throw usage(`the disk of export "${name}" has an invalid size (${disk.size})`);
  }
  return table;
}

function listen(server: ReturnType<typeof createServer>, host: string, port: number) {
  return new Promise<void>((resolve, reject) => {
    server.once('error', (error) =>
      reject(
        new HoldfastError(
          'USAGE_INVALID',
          `Cannot serve NBD on ${host}:${port}: ${describeError(error)}. Choose another address or port.`,
          { cause: error },
        ),
      ),
    );
    server.listen({ host, port }, () => resolve());
  });
}

/** The caller's handler, made unable to throw into the server's event handlers. */
function guarded(onError: NbdErrorHandler | undefined): NbdErrorHandler {
  return (error, read) => {
    try {
      onError?.(error, read);
    } catch {
      // Nowhere better to send it; the export must go on serving.
    }
  };
}

function usage(what: string): HoldfastError {
  return new HoldfastError('USAGE_INVALID', `Cannot start the NBD export: ${what}.`);
}
