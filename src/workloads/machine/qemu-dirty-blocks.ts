import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ByteRange } from '../byte-ranges.js';
import type { OpenDisk } from '../disk-reader.js';
import { IMAGE_BLOCK } from '../../engine/index.js';
import { flaggedExtents, openNbdDisk } from '../nbd/index.js';
import { QmpError, type QmpClient } from '../qemu/index.js';

/**
 * QEMU's NBD server on a private UNIX socket, started for one capture (QEMU runs one server at
 * most, so it is stopped again as soon as the capture has read what it needs): it reads the
 * stopped dirty bitmaps, and the guest's bytes of disks that must be read through QEMU.
 */
export class QemuNbdServer {
  private readonly exports: string[] = [];

  private constructor(
    private readonly qmp: QmpClient,
    private readonly socketPath: string,
    private readonly timeoutMs: number,
  ) {}

  /** Starts the server; throws (QmpError) when QEMU refuses, e.g. one already runs. */
  static async start(qmp: QmpClient, timeoutMs: number): Promise<QemuNbdServer> {
    const socketPath = join(tmpdir(), `holdfast-nbd-${randomBytes(6).toString('hex')}.sock`);
    await qmp.execute(
      'nbd-server-start',
      { addr: { type: 'unix', data: { path: socketPath } } },
      { timeoutMs },
    );
    return new QemuNbdServer(qmp, socketPath, timeoutMs);
  }

  /** Per image block of the node: true when the stopped `bitmap` names no write to it. */
  async untouchedBlocks(node: string, bitmap: string): Promise<boolean[]> {
    const name = await this.export(node, [bitmap]);
    try {
      const { size, ranges } = await flaggedExtents({
        socketPath: this.socketPath,
        exportName: name,
        context: `qemu:dirty-bitmap:${bitmap}`,
        timeoutMs: this.timeoutMs,
      });
      // A disk the capture finds of another size than QEMU's ignores this (disk-mirror.ts).
      return blocksUntouched(size, ranges);
    } finally {
      await this.unexport(name);
    }
  }

  /**
   * A read-only export of `node`: opens the guest's bytes as QEMU sees them, with QEMU's word
   * on which of them read as zeros (`base:allocation`), so those are not read.
   */
  async reader(node: string): Promise<() => Promise<OpenDisk>> {
    const name = await this.export(node, []);
    const target = { socketPath: this.socketPath, exportName: name, timeoutMs: this.timeoutMs };
    return async () => {
      const disk = await openNbdDisk(target);
      return {
        ...disk,
        dataExtents: async () => {
          const zeros = await flaggedExtents({
            ...target,
            context: 'base:allocation',
            flags: READS_AS_ZEROS,
          });
          return zeros.size === disk.size ? complement(zeros.ranges, disk.size) : undefined;
        },
      };
    };
  }

  /** Removes the exports left and stops the server. */
  async stop(): Promise<void> {
    for (const name of [...this.exports]) await this.unexport(name);
    await this.qmp
      .execute('nbd-server-stop', {}, { timeoutMs: this.timeoutMs })
      .catch(() => undefined);
    await rm(this.socketPath, { force: true });
  }

  private async export(node: string, bitmaps: string[]): Promise<string> {
    const name = `holdfast-export-${randomBytes(6).toString('hex')}`;
    await this.qmp.execute(
      'block-export-add',
      { type: 'nbd', id: name, 'node-name': node, name, writable: false, bitmaps },
      { timeoutMs: this.timeoutMs },
    );
    this.exports.push(name);
    return name;
  }

  private async unexport(name: string): Promise<void> {
    this.exports.splice(this.exports.indexOf(name), 1);
    await this.qmp
      .execute('block-export-del', { id: name, mode: 'hard' }, { timeoutMs: this.timeoutMs })
      .catch(() => undefined);
  }
}

/** `base:allocation` status bit: the extent reads as zeros (NBD_STATE_ZERO). */
const READS_AS_ZEROS = 2;

/** The parts of `[0, size)` outside the sorted, disjoint `ranges`. */
function complement(ranges: readonly ByteRange[], size: number): ByteRange[] {
  const out: ByteRange[] = [];
  let at = 0;
  for (const range of ranges) {
    if (range.offset > at) out.push({ offset: at, length: range.offset - at });
    at = Math.max(at, range.offset + range.length);
  }
  if (at < size) out.push({ offset: at, length: size - at });
  return out;
}

/**
 * Removes a bitmap, best effort. QEMU refuses while an export it just closed still holds the
 * bitmap, so a refusal is tried again a few times; a QEMU that does not answer is not.
 */
export async function removeBitmap(
  qmp: QmpClient,
  node: string,
  name: string,
  timeoutMs: number,
): Promise<void> {
  for (let attempt = 1; attempt <= 5; attempt += 1) {
    try {
      await qmp.execute('block-dirty-bitmap-remove', { node, name }, { timeoutMs });
      return;
    } catch (error) {
      if (!(error instanceof QmpError)) return;
      await new Promise((resolve) => setTimeout(resolve, 20 * attempt));
    }
  }
}

/** Per image block: true when no dirty range touches it. */
export function blocksUntouched(size: number, dirty: readonly ByteRange[]): boolean[] {
  const unchanged = new Array<boolean>(Math.ceil(size / IMAGE_BLOCK)).fill(true);
  for (const range of dirty) {
    const first = Math.floor(range.offset / IMAGE_BLOCK);
    const last = Math.floor((range.offset + range.length - 1) / IMAGE_BLOCK);
    for (let block = first; block <= last && block < unchanged.length; block += 1)
      unchanged[block] = false;
  }
  return unchanged;
}
