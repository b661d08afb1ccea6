import { randomBytes } from 'node:crypto';
import { readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { describeError } from '../../core/index.js';
import { IMAGE_BLOCK } from '../image-blocks.js';
import { QmpClient } from '../qemu/index.js';
import { readDirtyBlocks, removeBitmap } from './qemu-dirty-blocks.js';

/**
 * Changed-block tracking through a running QEMU's dirty bitmaps (docs/disks.md "QEMU dirty
 * bitmaps"). Inside each capture's freeze window, one QMP transaction starts a new bitmap on
 * every tracked disk and stops the one started at the last capture; the stopped bitmap names
 * the blocks the guest wrote since then, read through a short-lived NBD export, and the capture
 * reads only those. QEMU marks a block once the write has completed, so any write that ends
 * after the transaction is in the new bitmap, and any that ended before it is in the file.
 */

/** What the capture of one disk learns, and what it must do afterwards. */
export interface DiskTracking {
  /**
   * Per {@link IMAGE_BLOCK} block: true when QEMU saw no write to it since the last settled
   * capture. Undefined when that is not known (first capture, QEMU restarted, a failure):
   * the disk is then read and hashed whole, as without QEMU.
   */
  readonly unchanged?: readonly boolean[];
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

/**
 * Starts new bitmaps for `disks` on the connected QEMU and reads what changed since the last
 * capture. Call inside the freeze window, before the disks are read; the caller closes `qmp`.
 * Never throws: any doubt means reading the disk whole (said in a notice).
 */
export async function trackQemuChanges(
  qmp: QmpClient,
  qmpSocket: string,
  disks: ReadonlyArray<{ readonly path: string; readonly mirror: string }>,
  notice: (message: string) => void,
): Promise<Map<string, DiskTracking>> {
  const result = new Map<string, DiskTracking>(disks.map((d) => [d.path, UNTRACKED]));
  const run = <T>(command: string, args?: Record<string, unknown>) =>
    qmp.execute<T>(command, args, { timeoutMs: FROZEN_TIMEOUT_MS });
  try {
    const nodes = await run<BlockNode[]>('query-named-block-nodes', { flat: true });
    const plans: Plan[] = [];
    for (const disk of disks) {
      const plan = await planDisk(disk, nodes, notice);
      if (plan) plans.push(plan);
    }
    if (plans.length === 0) return result;
    // One transaction: every disk's new bitmap starts at the same instant.
    await run('transaction', {
      actions: plans.flatMap((p) => [
        {
          type: 'block-dirty-bitmap-add',
          data: { node: p.node, name: p.next, granularity: GRANULARITY, persistent: false },
        },
        ...(p.previous
          ? [{ type: 'block-dirty-bitmap-disable', data: { node: p.node, name: p.previous } }]
          : []),
      ]),
    });
    for (const plan of plans) result.set(plan.disk.path, tracking(qmpSocket, plan, notice));
    // Bitmaps of captures that failed or never settled would track writes for nothing.
    for (const plan of plans)
      for (const orphan of plan.orphans)
        await removeBitmap(qmp, plan.node, orphan, FROZEN_TIMEOUT_MS);
    const reads = plans.flatMap((p) =>
      p.previous ? [{ key: p.disk.path, node: p.node, bitmap: p.previous }] : [],
    );
    if (reads.length === 0) return result;
    const untouched = await readDirtyBlocks(qmp, reads, notice, FROZEN_TIMEOUT_MS);
    for (const [path, unchanged] of untouched)
      result.set(path, { ...result.get(path)!, unchanged });
    return result;
  } catch (error) {
    // Disks whose changes were read keep them; the others are read whole.
    notice(
      `Reading changed blocks from QEMU failed (${describeError(error)}); disks without them are read whole.`,
    );
    return result;
  }
}

interface Plan {
  readonly disk: { readonly path: string; readonly mirror: string };
  readonly node: string;
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
  const node = await findRawNode(nodes, path);
  if (node === undefined) {
    const qcow2 = nodes.some((n) => n.drv === 'qcow2' && n.file === path);
    notice(
      qcow2
        ? `Disk ${disk.path} is qcow2: QEMU's dirty bitmaps are used for raw disks only (qcow2 metadata may still sit in QEMU's memory), so it is read whole.`
        : `QEMU has no raw disk at ${disk.path}; it is read whole to find what changed.`,
    );
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
  return { disk, node: name, ...(previous ? { previous } : {}), next: bitmapName(), orphans };
}

/** The raw format node whose image is `path` (the node the guest writes through). */
async function findRawNode(
  nodes: readonly BlockNode[],
  path: string,
): Promise<BlockNode | undefined> {
  for (const node of nodes) {
    if (node.drv !== 'raw') continue;
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
