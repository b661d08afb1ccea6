#!/usr/bin/env node
// One machine backup of a disk image through Holdfast's machine path (capture into a mirror
// with a block-hash map, then an aligned-block backup of the mirror), for bench/run.js.
//
//   HOLDFAST_PASSWORD=… node bench/machine-backup.js --vault <dir> --image <file> --mirrors <dir>
//     [--qemu-monitor <socket>]
//
// With --qemu-monitor, the image is a raw disk of the QEMU (or qemu-storage-daemon) behind that
// QMP socket, and the capture reads only the blocks its dirty bitmap names (docs/disks.md "QEMU
// dirty bitmaps"). The vault must exist (`holdfast init`). The parent is the newest point of the vault made for
// the same machine name. Prints one JSON line on stdout: the point's stats, what the capture read
// and found changed, and what the backup read from the mirror. Needs `npm run build` first.
import path from 'node:path';
import { openVault, listPoints } from '../dist/app/direct.js';
import { backupMachine } from '../dist/app/machine-backup.js';

function parseArgs(argv) {
  const opts = { name: 'bench-machine' };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === '--vault') opts.vault = value;
    else if (flag === '--image') opts.image = path.resolve(value);
    else if (flag === '--mirrors') opts.mirrors = path.resolve(value);
    else if (flag === '--name') opts.name = value;
    else if (flag === '--qemu-monitor') opts.qemuMonitor = path.resolve(value);
    else throw new Error(`unknown option '${flag}'`);
  }
  for (const k of ['vault', 'image', 'mirrors'])
    if (!opts[k]) throw new Error(`--${k} is required`);
  return opts;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const passphrase = process.env.HOLDFAST_PASSWORD;
  if (!passphrase) throw new Error('set HOLDFAST_PASSWORD');
  const t0 = performance.now();
  const vault = await openVault(opts.vault, { kind: 'passphrase', passphrase });
  const opened = performance.now();
  const tag = `machine:${opts.name}`;
  // The archiver hands its live counters over once the capture is done and the lock is held.
  let progress;
  let archiverStarted;
  const { point, captured } = await backupMachine(vault, {
    name: opts.name,
    // The disk keeps the image's file name, so a restore lands at disks/<file name>.
    source: {
      disks: [{ name: path.basename(opts.image), path: opts.image }],
      excludeDisks: [],
      configs: [],
      ...(opts.qemuMonitor ? { qemuMonitor: opts.qemuMonitor } : {}),
    },
    mirrorDir: opts.mirrors,
    tags: [tag],
    runScript: () => Promise.reject(new Error('the benchmark configures no hook scripts')),
    now: Date.now,
    notice: (message) => console.error(`notice: ${message}`),
    findParent: async () =>
      (await listPoints(vault, () => undefined)).filter((p) => p.tags.includes(tag)).pop(),
    onProgress: (p) => {
      progress = p;
      archiverStarted ??= performance.now();
    },
  });
  const done = performance.now();
  const changed = captured.disks.map((d) =>
    d.changed ? d.changed.reduce((n, r) => n + r.length, 0) : null,
  );
  const seconds = (a, b) => Math.round(b - a) / 1000;
  const summary = {
    id: point.id,
    parent: point.parent ?? null,
    ...point.stats,
    consistency: captured.consistency,
    // Bytes the capture read from the source to hash it against the block map.
    sourceBytesRead: captured.disks.reduce((n, d) => n + d.bytesRead, 0),
    // Bytes the capture wrote into the mirror, and the ranges it found changed (null: first copy).
    mirrorBytesCopied: captured.disks.reduce((n, d) => n + d.bytesCopied, 0),
    changedBytes: changed.every((c) => c === null)
      ? null
      : changed.reduce((n, c) => n + (c ?? 0), 0),
    cloned: captured.disks.some((d) => d.cloned),
    // Bytes the image backup read from the mirror (unchanged blocks are taken from the parent).
    mirrorBytesRead: progress?.bytesRead ?? null,
    openSeconds: seconds(t0, opened),
    captureSeconds: seconds(opened, archiverStarted ?? done),
    backupSeconds: seconds(archiverStarted ?? done, done),
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

main().catch((error) => {
  console.error(`machine-backup: ${error?.stack ?? error}`);
  process.exit(1);
});
