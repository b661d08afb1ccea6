import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ensureCommand } from '../../core/os-tools.testkit.js';
import { QmpClient, QmpError } from './qmp.js';

const run = promisify(execFile);

/** A qemu-storage-daemon serving one disk image, for tests of code that talks QMP. */
export interface StorageDaemon {
  /** The QMP socket for the code under test (the kit talks over a second monitor of its own). */
  readonly qmpSocket: string;
  /** The node name of the disk's format node (raw or qcow2), as QMP commands name it. */
  readonly nodeName: string;
  /**
   * Writes `length` bytes of `pattern` at guest `offset` through the daemon, so that its dirty
   * bitmaps see the write: a temporary NBD server and writable export, `qemu-io -c 'write -P'`,
   * then both removed again. No other NBD server may run in the daemon meanwhile.
   */
  write(offset: number, length: number, pattern: number): Promise<void>;
  /** Stops the daemon (SIGTERM, then waits for exit; SIGKILL after 5 s). Idempotent. */
  stop(): Promise<void>;
}

/** Makes sure qemu-storage-daemon and qemu-io are there, installing them as root (as CI runs). */
export function ensureStorageDaemon(): void {
  ensureCommand('qemu-storage-daemon', 'qemu-system-common');
  ensureCommand('qemu-io', 'qemu-utils');
}

/** UNIX socket paths longer than this (108 bytes with the NUL) cannot be bound. */
const MAX_SOCKET_PATH = 107;
const EXPORT_ID = 'holdfast-testkit-write';

/**
 * Starts qemu-storage-daemon on `image` (format `raw` or `qcow2`) with its QMP socket in `dir`
 * (keep `dir` short, e.g. mkdtemp under /tmp) and waits until QMP answers.
 */
export async function startStorageDaemon(
  image: string,
  format: 'raw' | 'qcow2',
  dir: string,
): Promise<StorageDaemon> {
  const qmpSocket = join(dir, 'qmp.sock');
  const kitSocket = join(dir, 'kit.sock');
  const nbdSocket = join(dir, 'nbd.sock');
  if (Buffer.byteLength(nbdSocket) > MAX_SOCKET_PATH) {
    throw new Error(`The directory ${dir} is too long for UNIX sockets: use mkdtemp under /tmp.`);
  }
  const nodeName = 'disk0';
  // Two monitors: QEMU serves one QMP client per monitor at a time, so the kit's own connection
  // (for write) must not be the one the code under test connects to.
  const monitor = (id: string, path: string) => [
    '--chardev',
    `socket,path=${path},server=on,wait=off,id=${id}`,
    '--monitor',
    `chardev=${id}`,
  ];
  const child = spawn(
    'qemu-storage-daemon',
    [
      '--blockdev',
      `driver=file,node-name=file0,filename=${image}`,
      '--blockdev',
      `driver=${format},node-name=${nodeName},file=file0`,
      ...monitor('qmp0', qmpSocket),
      ...monitor('kit0', kitSocket),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<string>((resolve) => {
    child.once('error', (error) => resolve(error.message));
    child.once('exit', (code, signal) => resolve(`exit ${code ?? signal ?? '?'}`));
  });
  let kit: QmpClient;
  try {
    kit = await untilQmp(kitSocket, exited);
  } catch (error) {
    child.kill('SIGKILL');
    throw new Error(`qemu-storage-daemon on ${image} did not start: ${String(error)}\n${stderr}`);
  }
  let stopping: Promise<void> | undefined;
  return {
    qmpSocket,
    nodeName,
    write: async (offset, length, pattern) => {
      await kit.execute('nbd-server-start', { addr: { type: 'unix', data: { path: nbdSocket } } });
      try {
        const exported = { type: 'nbd', id: EXPORT_ID, 'node-name': nodeName, name: 'w' };
        await kit.execute('block-export-add', { ...exported, writable: true });
        try {
          await qemuIoWrite(`nbd+unix:///w?socket=${nbdSocket}`, offset, length, pattern);
        } finally {
          await removeExport(kit);
        }
      } finally {
        await kit.execute('nbd-server-stop');
      }
    },
    stop: () =>
      (stopping ??= (async () => {
        await kit.close();
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        const kill = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(kill);
      })()),
  };
}

/** Connects to the daemon's QMP socket once it is there, failing when the daemon exits first. */
async function untilQmp(socket: string, exited: Promise<string>): Promise<QmpClient> {
  const deadline = Date.now() + 30_000;
  let ended: string | undefined;
  void exited.then((how) => (ended = how));
  for (;;) {
    try {
      return await QmpClient.connect(socket, { timeoutMs: 5_000 });
    } catch (error) {
      if (ended !== undefined) throw new Error(`the daemon ended (${ended})`);
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

async function qemuIoWrite(url: string, offset: number, length: number, pattern: number) {
  const command = `write -P ${pattern} ${offset} ${length}`;
  const { stdout } = await run('qemu-io', ['-f', 'raw', url, '-c', command], { timeout: 60_000 });
  // qemu-io reports a failed write on stdout; only the success line proves the bytes went in.
  if (!stdout.includes(`wrote ${length}/${length} bytes at offset ${offset}`)) {
    throw new Error(`qemu-io ${command} on ${url} did not write: ${stdout}`);
  }
}

/**
 * Deletes the kit's export and waits until it is gone: qemu-io has exited, but the daemon may
 * not have seen its disconnect yet, and 'safe' deletion refuses an export still in use.
 */
async function removeExport(kit: QmpClient): Promise<void> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    try {
      await kit.execute('block-export-del', { id: EXPORT_ID });
    } catch (error) {
      const gone = error instanceof QmpError && error.description.includes('not found');
      if (!gone && Date.now() > deadline) throw error;
    }
    const exports = await kit.execute<Array<{ id: string }>>('query-block-exports');
    if (!exports.some((e) => e.id === EXPORT_ID)) return;
    if (Date.now() > deadline) throw new Error(`The NBD export ${EXPORT_ID} stays after 5 s.`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
