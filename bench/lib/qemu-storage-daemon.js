// The working copy served by qemu-storage-daemon (holdfast-qemu), and writes through it.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BLOCK, LOGS, WORK } from './constants.js';
import { log, scrub } from './log.js';
import { fillRandom } from './random-data.js';
import { rmrf, sh } from './sh.js';

/** The daemon's node name of the image, and the id and name of the bench's write export. */
const QEMU_NODE = 'disk0';
const QEMU_EXPORT = 'bench-change';

/**
 * Starts qemu-storage-daemon on the raw image `file` with two QMP monitors: `qmpSocket` for
 * Holdfast's capture, and one of the bench's own for write(): QEMU serves one client per monitor
 * at a time. The same way as src/workloads/qemu/storage-daemon.testkit.ts. The daemon also stops
 * when the benchmark exits. Needs `npm run build` (the QMP client is Holdfast's).
 */
export async function startQemuDaemon(file) {
  const { QmpClient, QmpError } = await import('../../dist/workloads/qemu/index.js');
  // Short: a UNIX socket path has at most 107 bytes.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'holdfast-bench-qemu-'));
  const qmpSocket = path.join(dir, 'qmp.sock');
  const benchSocket = path.join(dir, 'bench.sock');
  const nbdSocket = path.join(dir, 'nbd.sock');
  const monitor = (id, socket) => [
    '--chardev',
    `socket,path=${socket},server=on,wait=off,id=${id}`,
    '--monitor',
    `chardev=${id}`,
  ];
  const args = [
    // A comma in a QEMU option value is written twice.
    ...['--blockdev', `driver=file,node-name=file0,filename=${file.replaceAll(',', ',,')}`],
    ...['--blockdev', `driver=raw,node-name=${QEMU_NODE},file=file0`],
    ...monitor('qmp0', qmpSocket),
    ...monitor('bench0', benchSocket),
  ];
  const logFile = path.join(LOGS, 'qemu-storage-daemon.log');
  fs.appendFileSync(logFile, `qemu-storage-daemon ${args.map(scrub).join(' ')}\n`);
  const outputFrom = fs.statSync(logFile).size;
  // Output into a file, not a pipe: the event loop stands still while spawnSync runs a command.
  const logFd = fs.openSync(logFile, 'a');
  const child = spawn('qemu-storage-daemon', args, { stdio: ['ignore', logFd, logFd] });
  fs.closeSync(logFd);
  let ended = null;
  const exited = new Promise((resolve) => {
    child.once('error', (error) => resolve((ended = error.message)));
    child.once('exit', (code, signal) => resolve((ended = `exit ${code ?? signal}`)));
  });
  const kill = () => {
    if (ended == null) child.kill('SIGTERM');
    rmrf(dir);
  };
  // First among the exit hooks: the daemon holds the image open (an XFS volume would stay busy).
  process.prependListener('exit', kill);
  const stop = async () => {
    process.off('exit', kill);
    if (ended == null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    rmrf(dir);
  };

  const connect = () => QmpClient.connect(benchSocket, { timeoutMs: 5_000 });
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await (await connect()).close();
        break;
      } catch (error) {
        if (ended != null) throw new Error(`it ended (${ended})`);
        if (Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  } catch (error) {
    await stop();
    const output = fs.readFileSync(logFile).subarray(outputFrom).toString('utf8').trim();
    const tail = output.split('\n').slice(-3).join(' / ') || 'no output';
    throw new Error(`qemu-storage-daemon did not start: ${error.message}: ${tail}`);
  }
  log(`  qemu-storage-daemon serves ${scrub(file)} (QMP ${qmpSocket}, pid ${child.pid})`);

  /** Deletes the write export and waits until it is gone (qemu-io's disconnect may lag). */
  const removeExport = async (qmp) => {
    const deadline = Date.now() + 5_000;
    for (;;) {
      try {
        await qmp.execute('block-export-del', { id: QEMU_EXPORT });
      } catch (error) {
        const gone = error instanceof QmpError && error.description.includes('not found');
        if (!gone && Date.now() > deadline) throw error;
      }
      const exports = await qmp.execute('query-block-exports');
      if (!exports.some((e) => e.id === QEMU_EXPORT)) return;
      if (Date.now() > deadline) throw new Error(`the NBD export ${QEMU_EXPORT} stays after 5 s`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };

  return {
    qmpSocket,
    /** The daemon's end when it ended before stop(), else null. */
    ended: () => ended,
    /**
     * Writes an imageChange through the daemon, so that its dirty bitmaps see it: a writable
     * NBD export on a server of its own, qemu-io, then both removed again, as QEMU runs one NBD
     * server and the capture starts its own.
     */
    async write(change) {
      const qmp = await connect();
      try {
        await qmp.execute('nbd-server-start', {
          addr: { type: 'unix', data: { path: nbdSocket } },
        });
        try {
          const exported = { type: 'nbd', id: QEMU_EXPORT, 'node-name': QEMU_NODE };
          await qmp.execute('block-export-add', { ...exported, name: QEMU_EXPORT, writable: true });
          try {
            qemuIoWrite(`nbd+unix:///${QEMU_EXPORT}?socket=${nbdSocket}`, change);
          } finally {
            await removeExport(qmp);
          }
        } finally {
          await qmp.execute('nbd-server-stop');
        }
      } finally {
        await qmp.close();
      }
    },
    stop,
  };
}

/** Writes the blocks of an imageChange into `url` with one qemu-io: `write -s <file>` each. */
function qemuIoWrite(url, change) {
  const dir = path.join(WORK, 'change-blocks');
  rmrf(dir);
  fs.mkdirSync(dir, { recursive: true });
  try {
    const buf = Buffer.alloc(BLOCK);
    const commands = change.flatMap(({ offset, seed }) => {
      const file = path.join(dir, `${offset}.bin`);
      fillRandom(buf, seed);
      fs.writeFileSync(file, buf);
      return ['-c', `write -s ${file} ${offset} ${BLOCK}`];
    });
    const r = sh('qemu-io', ['-f', 'raw', url, ...commands], { timeout: 300_000 });
    // qemu-io reports a failed write on stdout and may still exit 0: only the success lines
    // prove that the bytes went in.
    const missed = change.filter(
      ({ offset }) => !r.stdout.includes(`wrote ${BLOCK}/${BLOCK} bytes at offset ${offset}\n`),
    );
    if (r.error || r.status !== 0 || missed.length > 0) {
      const why = r.error?.message ?? `exit ${r.status}, ${missed.length} blocks not written`;
      throw new Error(`qemu-io on ${url}: ${why}: ${`${r.stdout}${r.stderr}`.trim().slice(-300)}`);
    }
  } finally {
    rmrf(dir);
  }
}
