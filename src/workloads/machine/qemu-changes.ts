import { randomBytes } from 'node:crypto';
import { readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { describeError } from '../../core/index.js';
import { IMAGE_BLOCK } from '../../engine/index.js';
import { QmpClient } from '../qemu/index.js';
import type { OpenDisk } from '../disk-reader.js';
import { QemuNbdServer, removeBitmap } from './qemu-dirty-blocks.js';

/**
 * Changed-block tracking through a running QEMU's dirty bitmaps (docs/disks.md "QEMU dirty
 * bitmaps"). Inside each capture's freeze window, one QMP transaction starts a new bitmap on
 * every tracked disk and stops the one started at the last capture; the stopped bitmap names
 * the blocks the guest wrote since then, read through a short-lived NBD export, and the capture
 * reads only those. QEMU marks a block once the write has completed, so any write that ends
 * after the transaction is in the new bitmap, and any that ended before it is in what the
 * capture reads: the file of a raw disk, and QEMU's own view (over NBD) of a qcow2 disk, whose
 * metadata QEMU may not have written to the file yet.
 */

/** What the capture of one disk learns, and what it must do afterwards. */
export interface DiskTracking {
  /**
   * Per {@link IMAGE_BLOCK} block: true when QEMU saw no write to it since the last settled
   * capture. Undefined when that is not known (first capture, QEMU restarted, a failure):
   * the disk is then read and hashed whole, as without QEMU.
   */
  readonly unchanged?: readonly boolean[];
  /**
   * Opens the guest's bytes through QEMU. Set for qcow2 disks: QEMU may hold their metadata in
   * memory, so the file alone is not what the guest sees until QEMU flushes.
   */
  readonly open?: () => Promise<OpenDisk>;
  /** Once the mirror and its block map are durable: the new bitmap becomes the one to read. */
  settle(): Promise<void>;
  /** The capture failed: drop the new bitmap, so QEMU does not keep tracking for nothing. */
  abandon(): Promise<void>;
}

/** Recorded beside a mirror once it is durable: the bitmap tracking writes since then. */
interface BitmapRecord {
  readonly v: 1;
  readonly node: string;
  readonly bitmap: string;
}

interface BlockNode {
  readonly 'node-name': string;
  readonly drv: string;
  readonly file: string;
  readonly 'dirty-bitmaps'?: ReadonlyArray<{
    readonly name: string;
    readonly recording?: boolean;
    readonly inconsistent?: boolean;
  }>;
}

/** QEMU's bitmaps count in 64 KiB pieces: fine enough, eight to an image block. */
const GRANULARITY = 64 * 1024;

const UNTRACKED: DiskTracking = { settle: async () => {}, abandon: async () => {} };

/**
 * Inside the freeze window each QEMU command may take this long: a QEMU that hangs must not
 * keep the machine frozen (the disks are then read whole).
 */
const FROZEN_TIMEOUT_MS = 5_000;

/**
 * Connects to the machine's QEMU before the freeze: connecting may wait (QEMU serves one
 * client per monitor), and the freeze window must stay short. Undefined, with a notice, when
 * QEMU does not answer: the disks are then read whole.
 */
export async function connectQemu(
  qmpSocket: string,
  notice: (message: string) => void,
): Promise<QmpClient | undefined> {
  try {
    return await QmpClient.connect(qmpSocket);
  } catch (error) {
    notice(
      `QEMU's monitor at ${qmpSocket} did not answer (${describeError(error)}); the disks are read whole to find what changed.`,
    );
    return undefined;
  }
}

/** What {@link trackQemuChanges} found, and what to clean up once the disks are read. */
export interface QemuTracking {
  readonly disks: ReadonlyMap<string, DiskTracking>;
  /**
   * Stops QEMU's NBD server and removes the bitmaps that have served (the stopped ones, and
   * those of failed captures). Cleanup only: call it after the thaw. Never throws.
   */
  release(): Promise<void>;
}

/**
 * Starts new bitmaps for `disks` on the connected QEMU and reads what changed since the last
 * capture. Call inside the freeze window, before the disks are read; call `release` once they
 * are and the machine has thawed, and close `qmp` after. Never throws: any doubt means reading the disk whole (said in a
 * notice); a qcow2 disk that cannot be read through QEMU is not tracked at all.
 */
export async function trackQemuChanges(
  qmp: QmpClient,
  qmpSocket: string,
  disks: ReadonlyArray<{ readonly path: string; readonly mirror: string }>,
  notice: (message: string) => void,
): Promise<QemuTracking> {
  const result = new Map<string, DiskTracking>(disks.map((d) => [d.path, UNTRACKED]));
  const run = <T>(command: string, args?: Record<string, unknown>) =>
    qmp.execute<T>(command, args, { timeoutMs: FROZEN_TIMEOUT_MS });
  let server: QemuNbdServer | undefined;
  const served: Array<{ node: string; name: string }> = [];
  const release = async () => {
    await server?.stop();
    for (const { node, name } of served) await removeBitmap(qmp, node, name, FROZEN_TIMEOUT_MS);
  };
  try {
    const nodes = await run<BlockNode[]>('query-named-block-nodes', { flat: true });
    const plans: Plan[] = [];
    for (const disk of disks) {
      const plan = await planDisk(disk, nodes, notice);
      if (plan) plans.push(plan);
    }
    const needServer = plans.some((p) => p.previous !== undefined || p.format === 'qcow2');
    if (needServer) {
      try {
        server = await QemuNbdServer.start(qmp, FROZEN_TIMEOUT_MS);
      } catch (error) {
        notice(
          `QEMU could not start an NBD server to read its bitmaps and disks (${describeError(error)}); the disks are read whole.`,
        );
      }
    }
    // Without the server a qcow2 disk can only be read from its file, which bitmaps cannot
    // vouch for: it is not tracked.
    const tracked = plans.filter((p) => server !== undefined || p.format === 'raw');
    if (tracked.length === 0) return { disks: result, release };
    // One transaction: every disk's new bitmap starts at the same instant.
    await run('transaction', {
      actions: tracked.flatMap((p) => [
        {
          type: 'block-dirty-bitmap-add',
          data: { node: p.node, name: p.next, granularity: GRANULARITY, persistent: false },
        },
        ...(p.previous && server
          ? [{ type: 'block-dirty-bitmap-disable', data: { node: p.node, name: p.previous } }]
          : []),
      ]),
    });
    for (const plan of tracked) {
      const open = plan.format === 'qcow2' ? await server!.reader(plan.node) : undefined;
      result.set(plan.disk.path, {
        ...tracking(qmpSocket, plan, notice),
        ...(open ? { open } : {}),
      });
    }
    // Read or not, the stopped bitmaps have served: the next capture reads the new ones. And
    // bitmaps of captures that failed or never settled would track writes for nothing.
    for (const plan of tracked)
      for (const name of [...plan.orphans, ...(plan.previous ? [plan.previous] : [])])
        served.push({ node: plan.node, name });
    for (const plan of tracked) {
      if (plan.previous === undefined || server === undefined) continue;
      const unchanged = await server.untouchedBlocks(plan.node, plan.previous);
      result.set(plan.disk.path, { ...result.get(plan.disk.path)!, unchanged });
    }
    return { disks: result, release };
  } catch (error) {
    // Disks whose changes were read keep them; the others are read whole.
    notice(
      `Reading changed blocks from QEMU failed (${describeError(error)}); disks without them are read whole.`,
    );
    return { disks: result, release };
  }
}

interface Plan {
  readonly disk: { readonly path: string; readonly mirror: string };
  readonly node: string;
  readonly format: 'raw' | 'qcow2';
  /** The bitmap started at the last settled capture, when QEMU still has it. */
  readonly previous?: string;
  readonly next: string;
  /** Other bitmaps of ours on the node, left by captures that failed. */
  readonly orphans: readonly string[];
}

/** Finds the disk's node in QEMU and the bitmap to read; undefined: not trackable. */
async function planDisk(
  disk: Plan['disk'],
  nodes: readonly BlockNode[],
  notice: (message: string) => void,
): Promise<Plan | undefined> {
  const record = await takeRecord(disk.mirror);
  const path = await realpath(disk.path).catch(() => disk.path);
  const node = await findFormatNode(nodes, path);
  if (node === undefined) {
    notice(`QEMU has no raw or qcow2 disk at ${disk.path}; it is read whole to find what changed.`);
    return undefined;
  }
  const name = node['node-name'];
  const kept = node['dirty-bitmaps']?.find((b) => b.name === record?.bitmap);
  const previous =
    record !== undefined &&
    record.node === name &&
    kept !== undefined &&
    kept.recording !== false &&
    kept.inconsistent !== true
      ? record.bitmap
      : undefined;
  if (record !== undefined && previous === undefined)
    notice(
      `QEMU no longer has the bitmap of ${disk.path}'s last capture (restarted?); the disk is read whole once.`,
    );
  const orphans = (node['dirty-bitmaps'] ?? [])
    .map((b) => b.name)
    .filter((b) => b.startsWith(BITMAP_PREFIX) && b !== previous);
  return {
    disk,
    node: name,
    format: node.drv === 'qcow2' ? 'qcow2' : 'raw',
    ...(previous ? { previous } : {}),
    next: bitmapName(),
    orphans,
  };
}

/**
 * The format node (raw or qcow2) whose image is `path`: the node the guest writes through.
 * Backing files of a qcow2 chain have nodes too, but not as the top of a chain the guest uses.
 */
async function findFormatNode(
  nodes: readonly BlockNode[],
  path: string,
): Promise<BlockNode | undefined> {
  for (const node of nodes) {
    if (node.drv !== 'raw' && node.drv !== 'qcow2') continue;
    const file = await realpath(node.file).catch(() => node.file);
    if (file === path) return node;
  }
  return undefined;
}

function tracking(qmpSocket: string, plan: Plan, notice: (message: string) => void): DiskTracking {
  const record: BitmapRecord = { v: 1, node: plan.node, bitmap: plan.next };
  return {
    settle: () => writeFile(recordPath(plan.disk.mirror), JSON.stringify(record)),
    abandon: async () => {
      try {
        const qmp = await QmpClient.connect(qmpSocket);
        try {
          await qmp.execute('block-dirty-bitmap-remove', { node: plan.node, name: plan.next });
        } finally {
          await qmp.close();
        }
      } catch (error) {
        notice(`Removing QEMU bitmap ${plan.next} failed: ${describeError(error)}.`);
      }
    },
  };
}

/**
 * Reads and removes the mirror's bitmap record: until this capture settles, the mirror's
 * state is not the one any bitmap started from.
 */
async function takeRecord(mirror: string): Promise<BitmapRecord | undefined> {
  const path = recordPath(mirror);
  try {
    const record = JSON.parse(await readFile(path, 'utf8')) as Partial<BitmapRecord>;
    await rm(path, { force: true });
    return record.v === 1 && typeof record.node === 'string' && typeof record.bitmap === 'string'
      ? (record as BitmapRecord)
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Stops trusting the hypervisor's bitmap for a mirror's disk: for writes made beside QEMU (a
 * replace), which its bitmaps never see. The next capture reads the disk whole.
 */
export async function forgetQemuTracking(mirror: string): Promise<void> {
  await rm(recordPath(mirror), { force: true });
}

function recordPath(mirror: string): string {
  return `${mirror}.bitmap`;
}

/** Bitmaps Holdfast starts are named so; a disk belongs to one machine item. */
const BITMAP_PREFIX = 'holdfast-';

function bitmapName(): string {
  return `${BITMAP_PREFIX}${randomBytes(6).toString('hex')}`;
}
