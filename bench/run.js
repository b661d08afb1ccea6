#!/usr/bin/env node
// Side-by-side benchmark of holdfast, restic and borg on the same data.
// See bench/README.md; `node bench/run.js --help` lists the options.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { STORES, startStore } from './object-stores.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

// Bump when the way data sets are built changes: existing data sets are then rebuilt.
const DATA_VERSION = 1;

const PROFILES = {
  full: { treeBytes: 1.5 * GiB, imageSize: 4 * GiB, imageDataBlocks: 1024 },
  quick: { treeBytes: 200 * MiB, imageSize: 512 * MiB, imageDataBlocks: 128 },
};
const TREE_SOURCE = '/usr';
const TREE_CHANGE_FRACTION = 0.03;
const IMAGE_CHANGE_FRACTION = 0.02;
const BLOCK = MiB;
const MUTATION_MTIME = Date.UTC(2024, 5, 1, 12, 0, 0) / 1000;

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const WORK = path.join(ROOT, 'bench', 'work');
const RUN = path.join(WORK, 'run');
const VAULTS = path.join(WORK, 'vaults');
const RESTORES = path.join(WORK, 'restore');
const LOGS = path.join(WORK, 'logs');
const TARS = path.join(WORK, 'tar');
const HOME = path.join(WORK, 'home');
const CACHE = path.join(WORK, 'cache');
// Where the machine path keeps its mirrors (one directory per tool): beside the working copy, so
// that on a file system that clones (--fs xfs) the capture can clone the image.
let MIRRORS = path.join(WORK, 'mirrors');
/** The XFS volume (an image file) mounted on bench/work/run by --fs xfs. */
const XFS_VOLUME = path.join(WORK, 'xfs-volume.img');
const HOLDFAST_BIN = path.join(ROOT, 'bin', 'holdfast.js');
const HOLDFAST_MAIN = path.join(ROOT, 'dist', 'cli', 'main.js');
const MACHINE_SCRIPT = path.join(ROOT, 'bench', 'machine-backup.js');
const MACHINE_MAIN = path.join(ROOT, 'dist', 'app', 'machine-backup.js');
const PASSWORD = 'holdfast-bench-passphrase';
// holdfast-machine backs the disk image up through the machine path (bench/machine-backup.js);
// holdfast-qemu too, with the image served by qemu-storage-daemon, whose dirty bitmaps tell the
// capture what changed. Both take part in the image data set only.
const ALL_TOOLS = ['holdfast', 'holdfast-machine', 'holdfast-qemu', 'restic', 'borg'];
const HOLDFAST_TOOLS = ['holdfast', 'holdfast-machine', 'holdfast-qemu'];
// What holdfast-qemu runs, and the Debian packages they come in.
const QEMU_PROGRAMS = [
  ['qemu-storage-daemon', 'qemu-system-common'],
  ['qemu-io', 'qemu-utils'],
];

const started = Date.now();

// ---------------------------------------------------------------------------------------------
// small helpers

function log(message) {
  const t = ((Date.now() - started) / 1000).toFixed(0).padStart(5);
  process.stderr.write(`[${t}s] ${message}\n`);
}

function fatal(message) {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(1);
}

/** Replaces machine-specific locations in text meant for the results. */
function scrub(text) {
  return String(text).split(ROOT).join('.');
}

function sh(cmd, args, options = {}) {
  return spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * MiB, ...options });
}

function commandExists(name) {
  return sh('sh', ['-c', `command -v ${name}`]).status === 0;
}

function firstLine(cmd, args) {
  const r = sh(cmd, args);
  if (r.status !== 0 || r.error) return null;
  return (r.stdout || r.stderr).trim().split('\n')[0];
}

function rmrf(p) {
  fs.rmSync(p, { recursive: true, force: true });
}

function syncDisks() {
  sh('sync', []);
}

function duBytes(p, args) {
  const r = sh('du', [...args, p]);
  if (r.status !== 0) return null;
  return Number(r.stdout.trim().split(/\s+/)[0]);
}

function fmtMiB(bytes) {
  if (bytes == null || Number.isNaN(bytes)) return 'n/a';
  return `${(bytes / MiB).toLocaleString('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 })} MiB`;
}

/** Like fmtMiB, but amounts under 1 MiB in KiB, so that small ones do not all read 0.0 MiB. */
function fmtAmount(bytes) {
  if (bytes == null || Number.isNaN(bytes) || Math.abs(bytes) >= MiB) return fmtMiB(bytes);
  return `${(bytes / KiB).toFixed(1)} KiB`;
}

function fmtSeconds(s) {
  return s < 10 ? `${s.toFixed(2)} s` : `${s.toFixed(1)} s`;
}

function fmtRatio(r) {
  if (r == null || !Number.isFinite(r)) return '–';
  return r >= 10 ? `${r.toFixed(1)}×` : `${r.toFixed(2)}×`;
}

// ---------------------------------------------------------------------------------------------
// options

function usage() {
  return `Usage: node bench/run.js [options]

  --tools LIST    comma-separated tools to compare (default: ${ALL_TOOLS.join(',')});
                  holdfast-machine and holdfast-qemu (the machine path, the second with
                  the image served by qemu-storage-daemon) take part in the disk image only
  --only SET      run only one data set: tree or disk (default: both)
  --quick         small data sets (200 MiB tree, 512 MiB image) for a smoke run
  --repeat N      run every data set N times and report medians (default: 1)
  --timeout S     stop a command that runs longer than S seconds (default: 3600)
  --keep          keep restored trees and images under bench/work/restore
  --stores LIST   object stores for holdfast's first tree backup: azure,s3 (default) or none
  --rebuild       rebuild the data sets even if they are up to date
  --fs xfs        put the working copy (bench/work/run) and the machine path's mirrors on an
                  XFS file system with reflink, made in an image file and mounted through a
                  loop device (root and xfsprogs needed): the capture then clones the image
                  and reads only blocks no longer shared with the last clone
  -h, --help      show this help

Results are printed as Markdown and written to bench/work/last-results.md (raw numbers in
bench/work/last-results.json, command output in bench/work/logs/).`;
}

function parseArgs(argv) {
  const opts = {
    tools: [...ALL_TOOLS],
    only: null,
    quick: false,
    keep: false,
    rebuild: false,
    repeat: 1,
    timeout: 3600,
    stores: Object.keys(STORES),
    fs: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.indexOf('=');
    const flag = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    const inline = arg.startsWith('--') && eq > 0 ? arg.slice(eq + 1) : undefined;
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) fatal(`${flag} needs a value\n\n${usage()}`);
      return v;
    };
    switch (flag) {
      case '--tools': {
        const tools = value()
          .split(',')
          .map((t) => t.trim())
          .filter(Boolean);
        for (const t of tools) if (!ALL_TOOLS.includes(t)) fatal(`unknown tool '${t}'`);
        if (tools.length === 0) fatal('--tools needs at least one tool');
        opts.tools = ALL_TOOLS.filter((t) => tools.includes(t));
        break;
      }
      case '--only': {
        const v = value();
        if (v !== 'tree' && v !== 'disk') fatal(`--only takes tree or disk, not '${v}'`);
        opts.only = v;
        break;
      }
      case '--quick':
        opts.quick = true;
        break;
      case '--repeat': {
        const v = value();
        opts.repeat = Number(v);
        if (!Number.isInteger(opts.repeat) || opts.repeat < 1)
          fatal(`--repeat takes a count, not '${v}'`);
        break;
      }
      case '--timeout': {
        const v = value();
        opts.timeout = Number(v);
        if (!(opts.timeout > 0)) fatal(`--timeout takes seconds, not '${v}'`);
        break;
      }
      case '--keep':
        opts.keep = true;
        break;
      case '--stores': {
        const v = value();
        opts.stores = v === 'none' ? [] : v.split(',').map((s) => s.trim());
        for (const s of opts.stores)
          if (!STORES[s]) fatal(`unknown store '${s}' (azure, s3, none)`);
        break;
      }
      case '--rebuild':
        opts.rebuild = true;
        break;
      case '--fs': {
        const v = value();
        if (v !== 'xfs') fatal(`--fs takes xfs, not '${v}'`);
        opts.fs = v;
        break;
      }
      case '-h':
      case '--help':
        process.stdout.write(`${usage()}\n`);
        process.exit(0);
        break;
      default:
        fatal(`unknown option '${arg}'\n\n${usage()}`);
    }
  }
  return opts;
}

// ---------------------------------------------------------------------------------------------
// required programs

/**
 * Installs the Debian packages of missing programs when root; otherwise stops with the command
 * to run, except for holdfast-qemu's programs: without them only that tool is unavailable.
 */
function ensurePrograms(tools, fsType) {
  // [program, Debian package, whether the run can go on without it]
  const wanted = [['/usr/bin/time', 'time']];
  if (tools.includes('restic')) wanted.push(['restic', 'restic']);
  if (tools.includes('borg')) wanted.push(['borg', 'borgbackup']);
  if (tools.includes('holdfast-qemu')) wanted.push(...QEMU_PROGRAMS.map((p) => [...p, true]));
  if (fsType === 'xfs') wanted.push(['mkfs.xfs', 'xfsprogs']);
  const present = (p) => (p.startsWith('/') ? fs.existsSync(p) : commandExists(p));
  const packages = (entries) => [...new Set(entries.map(([, pkg]) => pkg))];
  const missing = packages(wanted.filter(([p]) => !present(p)));
  if (missing.length === 0) {
    log(`programs present: ${wanted.map(([p]) => p).join(', ')}`);
    return;
  }
  const list = missing.join(' ');
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    const needed = packages(wanted.filter(([p, , optional]) => !optional && !present(p)));
    if (needed.length > 0)
      fatal(`missing Debian packages: ${list}. Install them with: sudo apt-get install ${list}`);
    log(`missing Debian packages: ${list}; holdfast-qemu is unavailable`);
    return;
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  log(`missing packages: ${list}; running apt-get update`);
  let r = spawnSync('apt-get', ['-q', 'update'], { stdio: ['ignore', 'inherit', 'inherit'], env });
  if (r.status !== 0) fatal(`apt-get update failed (${r.error?.message ?? `exit ${r.status}`})`);
  log(`running apt-get -q install -y --no-install-recommends ${list}`);
  r = spawnSync('apt-get', ['-q', 'install', '-y', '--no-install-recommends', ...missing], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env,
  });
  if (r.status !== 0) {
    fatal(`apt-get install ${list} failed (${r.error?.message ?? `exit ${r.status}`})`);
  }
  const still = packages(wanted.filter(([p]) => !present(p)));
  if (still.length > 0) fatal(`still missing after apt-get install: ${still.join(' ')}`);
  log(`installed: ${list}`);
}

// ---------------------------------------------------------------------------------------------
// deterministic pseudo-random data

function mix32(a, b) {
  let h = (Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x632be5ab, 0xc2b2ae35)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h >>> 0 || 0x2545f491;
}

class Rng {
  constructor(seed) {
    this.x = mix32(seed, 0x51ed270b) | 0;
  }
  next() {
    let x = this.x;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.x = x;
    return x >>> 0;
  }
  below(n) {
    return Math.floor((this.next() / 0x100000000) * n);
  }
  float() {
    return this.next() / 0x100000000;
  }
}

/** Fills buf (length a multiple of 4, 4-aligned) with xorshift32 output. */
function fillRandom(buf, seed) {
  const u = new Uint32Array(buf.buffer, buf.byteOffset, buf.byteLength >>> 2);
  let x = mix32(seed, 0x1b873593) | 0;
  for (let i = 0; i < u.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    u[i] = x;
  }
}

/** Picks k distinct integers from [0, n) (partial Fisher-Yates), in pick order. */
function pickDistinct(n, k, rng) {
  const idx = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < k; i++) {
    const j = i + rng.below(n - i);
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  return idx.slice(0, k);
}

const HOSTS = ['web-01', 'web-02', 'db-01', 'cache-03', 'worker-07', 'edge-11'];
const PATHS = [
  '/api/v1/items',
  '/api/v1/users',
  '/login',
  '/static/app.js',
  '/health',
  '/api/v2/orders',
];
const METHODS = ['GET', 'GET', 'GET', 'POST', 'PUT', 'DELETE'];
const LEVELS = ['INFO', 'INFO', 'INFO', 'DEBUG', 'WARN', 'ERROR'];
const WORDS = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel'];

/** A 1 MiB block of log lines: text that compresses well, like logs or source files. */
function fillTextBlock(buf, seed) {
  const rng = new Rng(seed);
  let t = Date.UTC(2024, 0, 1) + rng.below(300 * 86400) * 1000;
  const parts = [];
  let length = 0;
  while (length < buf.length) {
    t += rng.below(2000);
    const line =
      `${new Date(t).toISOString()} ${HOSTS[rng.below(6)]} ${LEVELS[rng.below(6)]} ` +
      `req=${rng.next().toString(16).padStart(8, '0')} ${METHODS[rng.below(6)]} ` +
      `${PATHS[rng.below(6)]}/${rng.below(100000)} status=${rng.below(8) === 0 ? 404 : 200} ` +
      `bytes=${rng.below(65536)} ms=${rng.below(900)} user=${WORDS[rng.below(8)]}\n`;
    parts.push(line);
    length += line.length;
  }
  buf.write(parts.join('').slice(0, buf.length), 0, 'latin1');
}

/** A 1 MiB block of 8 KiB database-like pages with fixed-width records and padding. */
function fillRecordBlock(buf, seed) {
  const rng = new Rng(seed);
  buf.fill(0);
  let id = rng.below(1 << 20);
  let ts = 1_700_000_000 + rng.below(1 << 24);
  for (let page = 0; page < buf.length; page += 8192) {
    buf.writeUInt32LE(0xdb0c0de5, page);
    buf.writeUInt32LE(page / 8192, page + 4);
    const records = 80 + rng.below(40);
    for (let r = 0; r < records; r++) {
      const o = page + 64 + r * 64;
      buf.writeUInt32LE(id++, o);
      buf.writeUInt32LE((ts += rng.below(60)), o + 4);
      buf.writeUInt16LE(rng.below(16), o + 8);
      buf.writeUInt32LE(rng.below(100000), o + 12);
      buf.write(WORDS[rng.below(8)], o + 16, 'latin1');
      buf.write(HOSTS[rng.below(6)], o + 32, 'latin1');
    }
  }
}

// ---------------------------------------------------------------------------------------------
// manifests: what a tree holds, to verify restores

/** Walks root; returns entries sorted by path: {path, type, size, hash, mtime}. */
function manifest(root) {
  const entries = [];
  const buf = Buffer.allocUnsafe(4 * MiB);
  const walk = (rel) => {
    for (const name of fs.readdirSync(path.join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const p = path.join(root, r);
      const st = fs.lstatSync(p);
      if (st.isDirectory()) {
        entries.push({ path: r, type: 'd', size: 0, hash: '', mtime: 0 });
        walk(r);
      } else if (st.isSymbolicLink()) {
        const target = fs.readlinkSync(p);
        entries.push({ path: r, type: 'l', size: target.length, hash: target, mtime: 0 });
      } else if (st.isFile()) {
        const h = createHash('sha1');
        const fd = fs.openSync(p, 'r');
        try {
          let n;
          while ((n = fs.readSync(fd, buf, 0, buf.length, null)) > 0) h.update(buf.subarray(0, n));
        } finally {
          fs.closeSync(fd);
        }
        const mtime = Math.floor(st.mtimeMs / 1000);
        entries.push({ path: r, type: 'f', size: st.size, hash: h.digest('hex'), mtime });
      } else {
        entries.push({ path: r, type: 'o', size: 0, hash: '', mtime: 0 });
      }
    }
  };
  walk('');
  return entries;
}

function summarize(entries) {
  const s = { files: 0, symlinks: 0, dirs: 0, bytes: 0 };
  for (const e of entries) {
    if (e.type === 'f') {
      s.files++;
      s.bytes += e.size;
    } else if (e.type === 'l') s.symlinks++;
    else if (e.type === 'd') s.dirs++;
  }
  return s;
}

/** Compares a restored tree's manifest with the expected one. */
function compareManifests(expected, actual) {
  const got = new Map(actual.map((e) => [e.path, e]));
  const missing = [];
  const differ = [];
  let mtimeDiffers = 0;
  for (const e of expected) {
    const a = got.get(e.path);
    got.delete(e.path);
    if (!a) missing.push(e.path);
    else if (a.type !== e.type || a.size !== e.size || a.hash !== e.hash) {
      const how =
        a.type !== e.type
          ? `type ${a.type} instead of ${e.type}`
          : a.size !== e.size
            ? `size ${a.size} instead of ${e.size}`
            : 'same size, other content';
      differ.push(`${e.path}: ${how}`);
    } else if (e.type === 'f' && a.mtime !== e.mtime) mtimeDiffers++;
  }
  const extra = [...got.keys()];
  const ok = missing.length === 0 && differ.length === 0 && extra.length === 0;
  const s = summarize(actual);
  const parts = [];
  if (missing.length) parts.push(`${missing.length} missing (e.g. ${missing[0]})`);
  if (differ.length) parts.push(`${differ.length} differ (e.g. ${differ[0]})`);
  if (extra.length) parts.push(`${extra.length} extra (e.g. ${extra[0]})`);
  const detail = ok
    ? `ok: ${s.files} files, ${s.symlinks} symlinks, ${s.dirs} dirs, ${s.bytes} bytes match` +
      (mtimeDiffers ? `; ${mtimeDiffers} file mtimes differ` : '; mtimes match')
    : `MISMATCH: ${parts.join(', ')}`;
  return { ok, detail, mtimeDiffers };
}

/** Finds where a tool put the restored copy of src inside target. */
function locateRestored(target, srcAbs, kind, topNames) {
  const base = path.basename(srcAbs);
  const fits = (p) => {
    try {
      const st = fs.lstatSync(p);
      if (kind === 'file') return st.isFile();
      if (!st.isDirectory()) return false;
      const names = new Set(fs.readdirSync(p));
      return topNames.every((n) => names.has(n));
    } catch {
      return false;
    }
  };
  const candidates = [path.join(target, base), path.join(target, srcAbs), target];
  for (const c of candidates) if (fits(c)) return c;
  // Fall back to a breadth-first search for an entry with the source's name.
  let level = [target];
  for (let depth = 0; depth < 16 && level.length > 0; depth++) {
    const next = [];
    for (const dir of level) {
      let dirents;
      try {
        dirents = fs.readdirSync(dir, { withFileTypes: true });
      } catch {
        continue;
      }
      for (const d of dirents) {
        const p = path.join(dir, d.name);
        if (d.name === base && fits(p)) return p;
        if (d.isDirectory()) next.push(p);
      }
    }
    level = next;
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// data sets

function buildTree(dst, targetBytes) {
  const stats = { files: 0, symlinks: 0, dirs: 0, bytes: 0, skipped: 0 };
  const dirs = [];
  let done = false;
  fs.mkdirSync(dst, { recursive: true });
  const walk = (rel) => {
    let names;
    try {
      names = fs.readdirSync(path.join(TREE_SOURCE, rel)).sort();
    } catch {
      stats.skipped++;
      return;
    }
    for (const name of names) {
      if (done) return;
      const r = rel ? `${rel}/${name}` : name;
      const s = path.join(TREE_SOURCE, r);
      const d = path.join(dst, r);
      let st;
      try {
        st = fs.lstatSync(s);
      } catch {
        stats.skipped++;
        continue;
      }
      if (st.isDirectory()) {
        fs.mkdirSync(d);
        stats.dirs++;
        dirs.push([d, st]);
        walk(r);
      } else if (st.isSymbolicLink()) {
        fs.symlinkSync(fs.readlinkSync(s), d);
        fs.lutimesSync(d, st.atime, st.mtime);
        stats.symlinks++;
      } else if (st.isFile()) {
        try {
          fs.copyFileSync(s, d);
        } catch {
          stats.skipped++;
          rmrf(d);
          continue;
        }
        fs.chmodSync(d, (st.mode & 0o777) | 0o600);
        fs.utimesSync(d, st.atime, st.mtime);
        stats.files++;
        stats.bytes += fs.statSync(d).size;
        if (stats.bytes >= targetBytes) done = true;
      } else {
        stats.skipped++;
      }
    }
  };
  walk('');
  for (const [d, st] of dirs) {
    fs.chmodSync(d, (st.mode & 0o777) | 0o700);
    fs.utimesSync(d, st.atime, st.mtime);
  }
  const top = fs.statSync(TREE_SOURCE);
  fs.utimesSync(dst, top.atime, top.mtime);
  return stats;
}

function buildImage(file, size, dataBlocks) {
  const totalBlocks = size / BLOCK;
  const rng = new Rng(0x1de5);
  const blocks = pickDistinct(totalBlocks, dataBlocks, rng).sort((a, b) => a - b);
  const buf = Buffer.alloc(BLOCK);
  const kinds = { random: 0, text: 0, records: 0 };
  const fd = fs.openSync(file, 'w');
  try {
    fs.ftruncateSync(fd, size);
    for (const b of blocks) {
      const seed = mix32(0xd15c, b);
      const r = rng.float();
      if (r < 0.5) {
        fillRandom(buf, seed);
        kinds.random++;
      } else if (r < 0.75) {
        fillTextBlock(buf, seed);
        kinds.text++;
      } else {
        fillRecordBlock(buf, seed);
        kinds.records++;
      }
      fs.writeSync(fd, buf, 0, BLOCK, b * BLOCK);
    }
  } finally {
    fs.closeSync(fd);
  }
  return { size, blocks, kinds };
}

function dataSpec(profileName) {
  const p = PROFILES[profileName];
  return {
    version: DATA_VERSION,
    profile: profileName,
    treeSource: TREE_SOURCE,
    treeBytes: p.treeBytes,
    imageSize: p.imageSize,
    imageDataBlocks: p.imageDataBlocks,
  };
}

/** Builds (or reuses) the data sets of a profile; returns their description. */
function prepareData(profileName, rebuild) {
  const dir = path.join(WORK, 'data', profileName);
  const markerFile = path.join(dir, 'marker.json');
  const spec = dataSpec(profileName);
  if (!rebuild && fs.existsSync(markerFile)) {
    try {
      const marker = JSON.parse(fs.readFileSync(markerFile, 'utf8'));
      if (JSON.stringify(marker.spec) === JSON.stringify(spec)) {
        log(`reusing data sets in ${scrub(dir)}`);
        const treeManifest = JSON.parse(
          fs.readFileSync(path.join(dir, 'tree.manifest.json'), 'utf8'),
        );
        return { dir, ...marker, treeManifest };
      }
    } catch {
      // Unreadable marker: rebuild below.
    }
  }
  log(`building data sets in ${scrub(dir)} (profile ${profileName})`);
  rmrf(dir);
  fs.mkdirSync(dir, { recursive: true });
  log(`copying ${fmtMiB(spec.treeBytes)} of files from ${TREE_SOURCE} in sorted order`);
  const copied = buildTree(path.join(dir, 'tree'), spec.treeBytes);
  log(`copied ${copied.files} files, ${copied.symlinks} symlinks, ${fmtMiB(copied.bytes)}`);
  log('hashing the tree');
  const treeManifest = manifest(path.join(dir, 'tree'));
  fs.writeFileSync(path.join(dir, 'tree.manifest.json'), JSON.stringify(treeManifest));
  const tree = { ...summarize(treeManifest), skipped: copied.skipped };
  log(`writing ${fmtMiB(spec.imageSize)} sparse image with ${spec.imageDataBlocks} data blocks`);
  const image = buildImage(path.join(dir, 'disk.img'), spec.imageSize, spec.imageDataBlocks);
  image.allocated = duBytes(path.join(dir, 'disk.img'), ['-B1']);
  syncDisks();
  const marker = { spec, builtAt: new Date().toISOString(), tree, image };
  fs.writeFileSync(markerFile, JSON.stringify(marker, null, 1));
  return { dir, ...marker, treeManifest };
}

/** The small change: ~3% of the tree's files modified in place, deterministically. */
function mutateTree(root, entries) {
  const files = entries.filter((e) => e.type === 'f');
  const rng = new Rng(0x7ee);
  const count = Math.max(1, Math.round(files.length * TREE_CHANGE_FRACTION));
  const picked = pickDistinct(files.length, count, rng).sort((a, b) => a - b);
  const done = { appended: 0, rewritten: 0, touched: 0, bytesWritten: 0 };
  picked.forEach((index, i) => {
    const e = files[index];
    const p = path.join(root, e.path);
    const kind = e.size === 0 && i % 3 === 1 ? 0 : i % 3;
    if (kind === 0) {
      const extra = Buffer.from(`\n# holdfast bench change ${i} ${rng.next().toString(16)}\n`);
      fs.appendFileSync(p, extra);
      done.appended++;
      done.bytesWritten += extra.length;
    } else if (kind === 1) {
      const len = Math.min(4096, e.size);
      const patch = Buffer.alloc(len + (4 - (len % 4)));
      fillRandom(patch, mix32(0xc4a9, index));
      const fd = fs.openSync(p, 'r+');
      try {
        fs.writeSync(fd, patch, 0, len, Math.floor((e.size - len) / 2));
      } finally {
        fs.closeSync(fd);
      }
      done.rewritten++;
      done.bytesWritten += len;
    } else {
      done.touched++;
    }
    fs.utimesSync(p, MUTATION_MTIME, MUTATION_MTIME + i);
  });
  return { files: count, ...done };
}

/**
 * The small change of the image: ~2% of its data blocks, each to be overwritten with new random
 * data ({offset, seed}; the block's bytes are fillRandom(BLOCK bytes, seed)), in offset order.
 */
function imageChange(blocks) {
  const rng = new Rng(0xb10c);
  const count = Math.max(1, Math.round(blocks.length * IMAGE_CHANGE_FRACTION));
  const picked = pickDistinct(blocks.length, count, rng).sort((a, b) => a - b);
  return picked.map((i) => ({ offset: blocks[i] * BLOCK, seed: mix32(0x2ec4, blocks[i]) }));
}

/** Writes an imageChange straight into the image file. */
function mutateImage(file, change) {
  const buf = Buffer.alloc(BLOCK);
  const fd = fs.openSync(file, 'r+');
  try {
    for (const { offset, seed } of change) {
      fillRandom(buf, seed);
      fs.writeSync(fd, buf, 0, BLOCK, offset);
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads every file of a tree once so that all tools start from a warm page cache. */
function warmTree(root) {
  const buf = Buffer.allocUnsafe(4 * MiB);
  const walk = (dir) => {
    for (const d of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, d.name);
      if (d.isDirectory()) walk(p);
      else if (d.isFile()) warmFile(p, buf);
    }
  };
  walk(root);
}

function warmFile(file, buf = Buffer.allocUnsafe(4 * MiB)) {
  const fd = fs.openSync(file, 'r');
  try {
    while (fs.readSync(fd, buf, 0, buf.length, null) > 0);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Before a timed command that creates many files (a restore, `tar -x`): writes back and drops
 * the page cache, then reads `inputs` back into it: what the command reads (a vault, a tar file)
 * and the data set, which the next tool's backup expects warm. The command thus reads warm and
 * creates files on a fresh cache. Measured on this kind of VM (ext4 without a journal),
 * creating a file gets slower with what earlier runs left in the page cache: `tar -x` of the
 * tree took 1.4 s after a drop and 5 to 14 s after a few creations and removals without one
 * (kernel profile: inode allocation's `recently_deleted` check looking up buffer heads), so
 * without the drop a restore's time depended on which tool ran before it. Needs root to write
 * `/proc/sys/vm/drop_caches`; otherwise says so once and goes on without it.
 */
let dropCachesWarned = false;
function freshPageCache(inputs) {
  syncDisks();
  try {
    fs.writeFileSync('/proc/sys/vm/drop_caches', '1');
  } catch (e) {
    if (!dropCachesWarned)
      log(
        `  note: cannot drop the page cache (${e.code ?? e.message}): restore times depend on the runs before them`,
      );
    dropCachesWarned = true;
  }
  for (const input of inputs) {
    if (fs.statSync(input).isDirectory()) warmTree(input);
    else warmFile(input);
  }
}

function freshCopy(src, dst) {
  rmrf(dst);
  fs.mkdirSync(path.dirname(dst), { recursive: true });
  const r = sh('cp', ['-a', '--reflink=auto', '--sparse=always', src, dst]);
  if (r.status !== 0) fatal(`cp -a ${scrub(src)} failed: ${scrub(r.stderr)}`);
  syncDisks();
}

// ---------------------------------------------------------------------------------------------
// measured commands

let stepCounter = 0;

let commandTimeout = 3600;
const loadSamples = [];

/**
 * This process's I/O counters (/proc/self/io), or null where there are none. A reaped child's
 * counters, and those of the children it reaped, are added to its parent's, so the difference
 * across spawnSync is what the whole command read and wrote: rchar counts every byte read()
 * returned (page cache included, holes as zeros), read_bytes only what came from the device.
 */
function ioCounters() {
  try {
    const fields = {};
    for (const line of fs.readFileSync('/proc/self/io', 'utf8').trim().split('\n')) {
      const [key, value] = line.split(':');
      fields[key.trim()] = Number(value);
    }
    return fields;
  } catch {
    return null;
  }
}

/**
 * Runs a command under /usr/bin/time; returns {ok, seconds, rssKiB, cpu, io, stdout, error}, io
 * being what the command and its children read ({rchar, readBytes}, or null).
 */

function timed(label, cmd, args, { cwd, env }) {
  const base = path.join(LOGS, `${String(++stepCounter).padStart(2, '0')}-${label}`);
  const outFd = fs.openSync(`${base}.out`, 'w');
  const errFd = fs.openSync(`${base}.err`, 'w');
  fs.writeFileSync(`${base}.cmd`, `cd ${scrub(cwd)} && ${[cmd, ...args].map(scrub).join(' ')}\n`);
  let r;
  let io = null;
  try {
    const ioBefore = ioCounters();
    // timeout(1) kills the whole process group, so a hung tool does not stop the run.
    const timeArgs = ['-f', '%e %M %U %S', '-o', `${base}.time`, cmd, ...args];
    r = spawnSync('timeout', ['-k', '30', String(commandTimeout), '/usr/bin/time', ...timeArgs], {
      cwd,
      env,
      stdio: ['ignore', outFd, errFd],
    });
    const ioAfter = ioCounters();
    if (ioBefore && ioAfter)
      io = {
        rchar: ioAfter.rchar - ioBefore.rchar,
        readBytes: ioAfter.read_bytes - ioBefore.read_bytes,
      };
  } finally {
    fs.closeSync(outFd);
    fs.closeSync(errFd);
  }
  loadSamples.push(os.loadavg()[0]);
  syncDisks();
  const stdout = fs.readFileSync(`${base}.out`, 'utf8');
  const stderr = fs.readFileSync(`${base}.err`, 'utf8');
  let seconds = null;
  let rssKiB = null;
  let cpu = null;
  try {
    const lines = fs.readFileSync(`${base}.time`, 'utf8').trim().split('\n');
    const m = /^([\d.]+) (\d+) ([\d.]+) ([\d.]+)$/.exec(lines[lines.length - 1] ?? '');
    if (m) {
      seconds = Number(m[1]);
      rssKiB = Number(m[2]);
      cpu = Number(m[3]) + Number(m[4]);
    }
  } catch {
    // No timing file: /usr/bin/time itself failed; reported below.
  }
  if (r.error || r.status !== 0 || seconds == null) {
    const tail = (stderr.trim() || stdout.trim())
      .split('\n')
      .filter((l) => l.trim())
      .slice(-3)
      .join(' / ');
    const why = r.error
      ? r.error.message
      : r.status === 124 || r.status === 137
        ? `timed out after ${commandTimeout} s`
        : r.signal
          ? `signal ${r.signal}`
          : `exit ${r.status}`;
    const hint =
      r.status === 13 && cmd === process.execPath ? ' (Node: unsettled top-level await)' : '';
    const error = scrub(`${label}: ${why}${hint}: ${tail || 'no output'}`).slice(0, 400);
    log(`  FAILED ${error}`);
    return { ok: false, seconds, rssKiB, cpu, io, stdout, error };
  }
  const read = io ? `, read ${fmtAmount(io.rchar)}` : '';
  log(`  ${label}: ${fmtSeconds(seconds)}, peak RSS ${(rssKiB / KiB).toFixed(0)} MiB${read}`);
  return { ok: true, seconds, rssKiB, cpu, io, stdout };
}

// ---------------------------------------------------------------------------------------------
// the working copy served by qemu-storage-daemon (holdfast-qemu)

/** The daemon's node name of the image, and the id and name of the bench's write export. */
const QEMU_NODE = 'disk0';
const QEMU_EXPORT = 'bench-change';

/**
 * Starts qemu-storage-daemon on the raw image `file` with two QMP monitors: `qmpSocket` for
 * Holdfast's capture, and one of the bench's own for write(): QEMU serves one client per monitor
 * at a time. The same way as src/workloads/qemu/storage-daemon.testkit.ts. The daemon also stops
 * when the benchmark exits. Needs `npm run build` (the QMP client is Holdfast's).
 */
async function startQemuDaemon(file) {
  const { QmpClient, QmpError } = await import('../dist/workloads/qemu/index.js');
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

// ---------------------------------------------------------------------------------------------
// tools

function baseEnv() {
  const env = { ...process.env };
  for (const k of Object.keys(env)) {
    if (/^(RESTIC_|BORG_|HOLDFAST_)/.test(k)) delete env[k];
  }
  Object.assign(env, {
    XDG_CONFIG_HOME: path.join(HOME, 'config'),
    XDG_CACHE_HOME: path.join(HOME, 'cache'),
    XDG_DATA_HOME: path.join(HOME, 'data'),
    XDG_STATE_HOME: path.join(HOME, 'state'),
  });
  return env;
}

/** A tool's machine path mirrors: one directory each, so that no two share a block map. */
function mirrorsOf(tool) {
  return path.join(MIRRORS, tool);
}

/**
 * A tool that backs the image up through the machine path (bench/machine-backup.js) into a
 * holdfast vault: `settings`, and optionally what its version adds, why it is unavailable
 * (beyond holdfast not being built), and the extra arguments of a backup.
 */
function machineTool(tool, { settings, version, unavailable, backupArgs }) {
  return {
    settings,
    kinds: ['disk'],
    version() {
      const extra = version ? `, ${version()}` : '';
      return `${tool}: ${TOOLS.holdfast.version()}, bench/machine-backup.js${extra}`;
    },
    unavailable() {
      if (!fs.existsSync(MACHINE_MAIN)) {
        return 'not built: dist/app/machine-backup.js is missing (run npm run build)';
      }
      return unavailable?.() ?? null;
    },
    env(vault) {
      return TOOLS.holdfast.env(vault);
    },
    init(vault) {
      return TOOLS.holdfast.init(vault);
    },
    backup(vault, source, context) {
      const args = ['--vault', vault, '--image', source, '--mirrors', mirrorsOf(tool)];
      return [process.execPath, [MACHINE_SCRIPT, ...args, ...(backupArgs?.(context) ?? [])]];
    },
    restore(vault, target) {
      return TOOLS.holdfast.restore(vault, target);
    },
    jsonSummary: true,
  };
}

function helpMentions(cmd, args, word) {
  const r = sh(cmd, args);
  return `${r.stdout}${r.stderr}`.includes(word);
}

const TOOLS = {
  holdfast: {
    settings: 'defaults (compression and encryption on), password via HOLDFAST_PASSWORD',
    version() {
      const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
      const rev = firstLine('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']);
      return `holdfast ${pkg.version} (${rev ? `commit ${rev}` : 'no commit yet'}, working tree)`;
    },
    unavailable() {
      if (!fs.existsSync(HOLDFAST_MAIN)) {
        return 'not built: dist/cli/main.js is missing (run npm run build)';
      }
      return null;
    },
    env(vault) {
      return { ...baseEnv(), HOLDFAST_PASSWORD: PASSWORD };
    },
    init(vault) {
      return [process.execPath, [HOLDFAST_BIN, 'init', '--vault', vault]];
    },
    backup(vault, source) {
      return [process.execPath, [HOLDFAST_BIN, 'backup', source, '--vault', vault, '--json']];
    },
    restore(vault, target) {
      return [
        process.execPath,
        [HOLDFAST_BIN, 'restore', 'latest', '--target', target, '--vault', vault],
      ];
    },
    jsonSummary: true,
  },
  'holdfast-machine': machineTool('holdfast-machine', {
    settings:
      'the machine path on the image: capture into a mirror in bench/work/mirrors/holdfast-machine ' +
      '(every 512 KiB block of the source that holds data hashed, holes skipped, changed ones ' +
      'copied; a block-hash map beside the mirror), then a backup of the mirror in aligned ' +
      'blocks with the previous point as parent, through `bench/machine-backup.js`; vault ' +
      'defaults as for holdfast',
  }),
  'holdfast-qemu': machineTool('holdfast-qemu', {
    settings:
      'as holdfast-machine (a mirror of its own), with the image served by qemu-storage-daemon ' +
      'for the whole image data set and `--qemu-monitor` naming its QMP socket: after the first ' +
      "capture, each capture reads only the blocks the daemon's dirty bitmap names; the small " +
      'change is written through the daemon',
    version: () => firstLine('qemu-storage-daemon', ['--version']) ?? 'qemu-storage-daemon missing',
    unavailable() {
      const missing = QEMU_PROGRAMS.filter(([p]) => !commandExists(p));
      if (missing.length === 0) return null;
      const packages = missing.map(([, pkg]) => pkg).join(' ');
      return (
        `${missing.map(([p]) => p).join(' and ')} not installed ` +
        `(run: sudo apt-get install --no-install-recommends ${packages})`
      );
    },
    backupArgs: ({ qemuMonitor }) => ['--qemu-monitor', qemuMonitor],
  }),
  restic: {
    get settings() {
      const sparse = this.sparseRestore()
        ? '`restore --sparse` for the image'
        : 'no `restore --sparse` in this version, so the image is restored without holes';
      return `repository version 2, \`--compression auto\`, default encryption (AES-256 + Poly1305), ${sparse}`;
    },
    version() {
      return firstLine('restic', ['version']);
    },
    unavailable() {
      return commandExists('restic') ? null : 'restic is not installed';
    },
    env(vault) {
      return {
        ...baseEnv(),
        RESTIC_REPOSITORY: vault,
        RESTIC_PASSWORD: PASSWORD,
        RESTIC_CACHE_DIR: path.join(CACHE, 'restic'),
      };
    },
    init() {
      return ['restic', ['init', '--repository-version', '2']];
    },
    backup(vault, source) {
      return [
        'restic',
        ['backup', '--compression', 'auto', '--host', 'bench', path.basename(source)],
      ];
    },
    restore(vault, target, { sparse }) {
      const sparseFlag = sparse && this.sparseRestore() ? ['--sparse'] : [];
      return ['restic', ['restore', 'latest', '--target', target, ...sparseFlag]];
    },
    sparseRestore() {
      this._sparse ??= helpMentions('restic', ['restore', '--help'], '--sparse');
      return this._sparse;
    },
  },
  borg: {
    settings:
      '`--encryption repokey-blake2`, `--compression zstd,3`, passphrase via BORG_PASSPHRASE, `extract --sparse` for the image',
    version() {
      return firstLine('borg', ['--version']);
    },
    unavailable() {
      return commandExists('borg') ? null : 'borg is not installed';
    },
    env(vault) {
      return {
        ...baseEnv(),
        BORG_REPO: vault,
        BORG_PASSPHRASE: PASSWORD,
        BORG_BASE_DIR: path.join(HOME, 'borg'),
        BORG_CACHE_DIR: path.join(CACHE, 'borg'),
        BORG_DISPLAY_PASSPHRASE: 'no',
        BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes',
      };
    },
    init() {
      return ['borg', ['init', '--encryption', 'repokey-blake2']];
    },
    backup(vault, source, { n }) {
      return [
        'borg',
        ['create', '--stats', '--compression', 'zstd,3', `::point-${n}`, path.basename(source)],
      ];
    },
    restore(vault, target, { sparse, n }) {
      return ['borg', ['extract', ...(sparse ? ['--sparse'] : []), `::point-${n}`]];
    },
    restoreInTarget: true,
  },
};

// ---------------------------------------------------------------------------------------------
// one data set, all tools

/** A tool's vault for one data set. */
function vaultOf(tool, kind) {
  return path.join(VAULTS, `${tool}-${kind}`);
}

/** The tools that take part in a data set: holdfast-machine and holdfast-qemu only in the image's. */
function toolsFor(kind, tools) {
  return tools.filter((t) => TOOLS[t].kinds?.includes(kind) ?? true);
}

/**
 * Runs the measured sequence for one data set. kind is 'tree' or 'disk'.
 * Returns per-tool step results plus the tar baseline.
 */
async function runDataSet(kind, data, allTools, opts) {
  const tools = toolsFor(kind, allTools);
  const source = path.join(RUN, kind === 'tree' ? 'tree' : 'disk.img');
  const master = path.join(data.dir, kind === 'tree' ? 'tree' : 'disk.img');
  const isTree = kind === 'tree';
  const topNames = isTree ? fs.readdirSync(master).sort() : [];
  const result = { kind, tools: {}, baseline: {}, change: null };

  log(`== ${kind}: fresh working copy`);
  for (const d of [HOME, CACHE]) {
    rmrf(d);
    fs.mkdirSync(d, { recursive: true });
  }
  freshCopy(master, source);
  const warm = () => (isTree ? warmTree(source) : warmFile(source));
  warm();

  const verify = (target, expected) => {
    const where = locateRestored(target, source, isTree ? 'dir' : 'file', topNames);
    if (!where) {
      let listing = [];
      try {
        listing = fs.readdirSync(target).slice(0, 8);
      } catch {
        // target missing
      }
      return {
        ok: false,
        detail: `restored data not found in target (top level: ${listing.join(', ') || 'empty'})`,
      };
    }
    if (isTree) {
      const v = compareManifests(expected, manifest(where));
      return v;
    }
    const same = sh('cmp', ['-s', source, where]).status === 0;
    const allocated = duBytes(where, ['-B1']);
    const apparent = fs.statSync(where).size;
    return {
      ok: same,
      detail: same ? 'ok: cmp identical' : 'MISMATCH: cmp reports a difference',
      allocated,
      apparent,
    };
  };

  const state = {};
  for (const tool of tools) {
    const t = TOOLS[tool];
    const steps = {};
    state[tool] = { failed: t.unavailable() };
    result.tools[tool] = steps;
    if (state[tool].failed) {
      log(`${tool}: ${state[tool].failed}`);
      continue;
    }
    rmrf(vaultOf(tool, kind));
    fs.mkdirSync(VAULTS, { recursive: true });
  }
  // The machine path's mirrors belong with its vault: a new vault starts from no mirror.
  rmrf(MIRRORS);

  // holdfast-qemu's image is served by qemu-storage-daemon from before its first backup to the
  // end of the data set: its capture keeps a dirty bitmap in the daemon from one to the next.
  let qemu = null;
  if (tools.includes('holdfast-qemu') && !state['holdfast-qemu'].failed) {
    try {
      qemu = await startQemuDaemon(source);
    } catch (error) {
      state['holdfast-qemu'].failed = scrub(error.message).slice(0, 400);
      log(`holdfast-qemu: ${state['holdfast-qemu'].failed}`);
    }
  }
  let expected;
  try {
    expected = await measureTools(kind, data, tools, opts, {
      result,
      state,
      source,
      warm,
      verify,
      qemu,
    });
  } finally {
    if (qemu) {
      if (qemu.ended()) log(`  qemu-storage-daemon ended early (${qemu.ended()}): see its log`);
      await qemu.stop();
    }
  }
  measureTarBaseline(kind, source, expected, verify, opts, result);
  return result;
}

/**
 * The baseline: `tar -c` of the working copy as the restores restore it (after the small
 * change), then `tar -x` of it into an empty directory prepared as the restores are (page cache
 * dropped, input and data set read back in). Measured after the tools' restores rather than
 * before the backups: on this kind of machine, writing files costs more once earlier runs have
 * used its memory (`tar -x` of the tree took 3.5-3.7 s instead of 1.8-2.7 s with the data set
 * read in after the cache was dropped), so a baseline measured first met another machine.
 */
function measureTarBaseline(kind, source, expected, verify, opts, result) {
  const tarFile = path.join(TARS, `${kind}.tar`);
  const target = path.join(RESTORES, `tar-${kind}`);
  const sparse = kind === 'tree' ? [] : ['-S'];
  rmrf(tarFile);
  rmrf(target);
  fs.mkdirSync(TARS, { recursive: true });
  fs.mkdirSync(target, { recursive: true });
  const c = timed(`tar-c-${kind}`, 'tar', ['-c', ...sparse, '-f', tarFile, path.basename(source)], {
    cwd: RUN,
    env: baseEnv(),
  });
  if (c.ok) freshPageCache([tarFile, source]);
  const x = c.ok
    ? timed(`tar-x-${kind}`, 'tar', ['-x', ...sparse, '-f', tarFile, '-C', target], {
        cwd: RUN,
        env: baseEnv(),
      })
    : { ok: false, error: 'skipped: tar -c failed' };
  const check = x.ok ? verify(target, expected) : null;
  if (check && !check.ok) log(`  tar baseline verification: ${check.detail}`);
  result.baseline = { c, x, check, tarBytes: c.ok ? fs.statSync(tarFile).size : null };
  rmrf(tarFile);
  if (!opts.keep) rmrf(target);
}

/**
 * The measured steps of one data set: two backups, the small change (through `qemu`, the daemon
 * serving the image, when there is one), a backup, restore and verification. Returns the manifest
 * of the working copy after the change, which every restore is checked against.
 */
async function measureTools(kind, data, tools, opts, context) {
  const { result, state, source, warm, verify, qemu } = context;
  const isTree = kind === 'tree';

  const step = (tool, name, fn) => {
    const steps = result.tools[tool];
    if (state[tool].failed) {
      steps[name] = { ok: false, skipped: state[tool].skip, error: state[tool].failed };
      return null;
    }
    const r = fn();
    steps[name] = r;
    if (!r.ok) Object.assign(state[tool], { failed: r.error, skip: true });
    return r;
  };

  const backup = (tool, n) => {
    const t = TOOLS[tool];
    const vault = vaultOf(tool, kind);
    const [cmd, args] = t.backup(vault, source, { n, qemuMonitor: qemu?.qmpSocket });
    const before = duBytes(vault, ['-sb']);
    const r = timed(`${tool}-${kind}-backup${n}`, cmd, args, { cwd: RUN, env: t.env(vault) });
    if (r.ok && t.jsonSummary) {
      try {
        r.summary = JSON.parse(r.stdout.trim());
      } catch {
        r.note = 'stdout was not a single JSON object';
      }
    }
    delete r.stdout;
    if (r.ok) {
      r.vaultBytes = duBytes(vault, ['-sb']);
      if (before != null && r.vaultBytes != null) r.storedBytes = r.vaultBytes - before;
    }
    return r;
  };

  // Phase 1: init, first backup, unchanged re-backup.
  for (const tool of tools) {
    const t = TOOLS[tool];
    log(`== ${kind}: ${tool}`);
    step(tool, 'init', () => {
      const vault = vaultOf(tool, kind);
      const [cmd, args] = t.init(vault);
      const r = timed(`${tool}-${kind}-init`, cmd, args, { cwd: RUN, env: t.env(vault) });
      delete r.stdout;
      return r;
    });
    if (!state[tool].failed) warm();
    step(tool, 'backup1', () => backup(tool, 1));
    step(tool, 'backup2', () => backup(tool, 2));
  }

  // The small change, once, for all tools.
  log(`== ${kind}: applying the small change`);
  let expected = data.treeManifest;
  if (isTree) {
    result.change = mutateTree(source, data.treeManifest);
    syncDisks();
    expected = manifest(source);
    result.change.summary = summarize(expected);
    log(
      `  modified ${result.change.files} files (${result.change.appended} appended, ` +
        `${result.change.rewritten} rewritten in the middle, ${result.change.touched} touched)`,
    );
  } else {
    result.change = await changeImage(source, data.image.blocks, qemu, state['holdfast-qemu']);
    syncDisks();
    const how = result.change.throughQemu ? ' through qemu-storage-daemon' : '';
    log(`  overwrote ${result.change.blocks} of ${data.image.blocks.length} data blocks${how}`);
  }
  result.sourceAllocated = isTree ? null : duBytes(source, ['-B1']);

  // Phase 2: backup after the change, restore of the latest point, verification.
  for (const tool of tools) {
    const t = TOOLS[tool];
    log(`== ${kind}: ${tool} after the change`);
    step(tool, 'backup3', () => backup(tool, 3));
    step(tool, 'restore', () => {
      const vault = vaultOf(tool, kind);
      const target = path.join(RESTORES, `${tool}-${kind}`);
      rmrf(target);
      fs.mkdirSync(target, { recursive: true });
      const [cmd, args] = t.restore(vault, target, { sparse: !isTree, n: 3 });
      // The tools' caches (restic's, borg's) are read on restore as the vault is.
      freshPageCache([vault, CACHE, HOME, source].filter((p) => fs.existsSync(p)));
      const r = timed(`${tool}-${kind}-restore`, cmd, args, {
        cwd: t.restoreInTarget ? target : RUN,
        env: t.env(vault),
      });
      delete r.stdout;
      if (r.ok) {
        r.check = verify(target, expected);
        log(`  ${tool} restore check: ${r.check.detail}`);
      }
      if (!opts.keep) rmrf(target);
      return r;
    });
  }
  return expected;
}

/**
 * Applies the image's small change: through `qemu` when the daemon serves the image, so that its
 * dirty bitmap sees the change, else straight into the file; the same bytes either way. When the
 * write through QEMU fails, the change goes into the file and `qemuState` (holdfast-qemu's)
 * records the failure, as its bitmap would miss the change.
 */
async function changeImage(source, blocks, qemu, qemuState) {
  const change = imageChange(blocks);
  if (qemu) {
    try {
      await qemu.write(change);
      return { blocks: change.length, throughQemu: true };
    } catch (error) {
      const why = `the change through qemu-storage-daemon failed: ${error.message}`;
      Object.assign(qemuState, { failed: scrub(why).slice(0, 400), skip: false });
      log(`  holdfast-qemu: ${why}`);
    }
  }
  mutateImage(source, change);
  return { blocks: change.length, throughQemu: false };
}

/**
 * Merges repeated runs of one data set. Times: the fastest run (load from other work on the machine
 * only ever adds time), with the slowest kept for the table; vault size: median; RSS: max.
 * Any failure wins.
 */
function aggregate(runs) {
  if (runs.length === 1) return runs[0];
  const median = (xs) => {
    const v = [...xs].sort((a, b) => a - b);
    const m = v.length >> 1;
    return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
  };
  const merge = (steps) => {
    const bad = steps.find((r) => !r?.ok);
    if (bad) return bad;
    const m = { ...steps[steps.length - 1] };
    m.runs = steps.map((r) => r.seconds);
    m.seconds = Math.min(...m.runs);
    m.maxSeconds = Math.max(...m.runs);
    m.cpu = Math.min(...steps.map((r) => r.cpu));
    m.rssKiB = Math.max(...steps.map((r) => r.rssKiB));
    if (steps.every((r) => r.vaultBytes != null))
      m.vaultBytes = median(steps.map((r) => r.vaultBytes));
    const badCheck = steps.find((r) => r.check && !r.check.ok);
    if (badCheck) m.check = badCheck.check;
    return m;
  };
  const out = { ...runs[runs.length - 1], tools: {}, repeats: runs.length };
  for (const tool of Object.keys(runs[0].tools)) {
    out.tools[tool] = {};
    for (const name of Object.keys(runs[0].tools[tool])) {
      out.tools[tool][name] = merge(runs.map((r) => r.tools[tool][name]));
    }
  }
  out.baseline = {
    c: merge(runs.map((r) => r.baseline.c)),
    x: merge(runs.map((r) => r.baseline.x)),
    check: runs.map((r) => r.baseline.check).find((c) => c && !c.ok) ?? runs[0].baseline.check,
    tarBytes: runs[0].baseline.tarBytes,
  };
  return out;
}

// ---------------------------------------------------------------------------------------------
// report

function peak(steps, names) {
  let best = null;
  for (const n of names) {
    const r = steps[n];
    if (r?.ok && r.rssKiB != null) best = Math.max(best ?? 0, r.rssKiB);
  }
  return best;
}

function cpuTotal(steps, names) {
  let sum = 0;
  for (const n of names) {
    const r = steps[n];
    if (!r?.ok || r.cpu == null) return null;
    sum += r.cpu;
  }
  return sum;
}

function renderTable(result, tools, sourceBytes, notes) {
  const isTree = result.kind === 'tree';
  const others = tools.filter((t) => !HOLDFAST_TOOLS.includes(t));
  // [subject, other]: each holdfast variant against each other tool.
  const ratioCols = tools
    .filter((t) => HOLDFAST_TOOLS.includes(t))
    .flatMap((h) => others.map((o) => [h, o]));
  const tarX = result.baseline.x?.ok ? result.baseline.x.seconds : null;
  const noteRef = (error) => {
    let index = notes.indexOf(error);
    if (index < 0) index = notes.push(error) - 1;
    return `FAILED [${index + 1}]`;
  };
  const failCell = (r) => {
    if (!r) return 'n/a';
    const ref = noteRef(r.error);
    return r.skipped ? ref.replace('FAILED', 'skipped') : ref;
  };
  // Each row: label, value(tool) -> {text, num}, ratio kind ('time' | 'size' | null).
  const timeRow = (label, name, withRate) => ({
    label,
    ratio: 'time',
    cell: (steps) => {
      const r = steps[name];
      if (!r?.ok) return { text: failCell(r) };
      const extra = [];
      if (withRate) extra.push(`${(sourceBytes / MiB / r.seconds).toFixed(0)} MiB/s`);
      if (r.maxSeconds != null) extra.push(`slowest ${fmtSeconds(r.maxSeconds)}`);
      // The machine path's split, from its own clock (of the one run shown: no repeats).
      const m = r.summary;
      if (m?.captureSeconds != null && r.runs == null)
        extra.push(
          `capture ${fmtSeconds(m.captureSeconds)}, backup ${fmtSeconds(m.backupSeconds)}`,
        );
      const suffix = extra.length ? ` (${extra.join(', ')})` : '';
      return { text: `${fmtSeconds(r.seconds)}${suffix}`, num: r.seconds };
    },
  });
  const readRow = (label, name) => ({
    label,
    ratio: 'size',
    cell: (steps) => {
      const r = steps[name];
      if (!r?.ok) return { text: failCell(r) };
      if (r.io == null) return { text: 'n/a' };
      const m = r.summary;
      const split =
        m?.sourceBytesRead != null
          ? ` (source ${fmtAmount(m.sourceBytesRead)} hashed, mirror ${fmtAmount(m.mirrorBytesRead)})`
          : '';
      return { text: `${fmtAmount(r.io.rchar)}${split}`, num: r.io.rchar };
    },
  });
  const storedRow = (label, name) => ({
    label,
    ratio: 'size',
    cell: (steps) => {
      const r = steps[name];
      if (!r?.ok) return { text: failCell(r) };
      return r.storedBytes == null
        ? { text: 'n/a' }
        : { text: fmtAmount(r.storedBytes), num: r.storedBytes };
    },
  });
  const vaultRow = (label, name) => ({
    label,
    ratio: 'size',
    cell: (steps) => {
      const r = steps[name];
      if (!r?.ok) return { text: failCell(r) };
      return { text: fmtMiB(r.vaultBytes), num: r.vaultBytes };
    },
  });
  const rows = [
    timeRow('backup 1: first', 'backup1', true),
    timeRow('backup 2: unchanged', 'backup2', false),
    timeRow(
      isTree ? 'backup 3: after ~3% of files changed' : 'backup 3: after 2% of blocks changed',
      'backup3',
      false,
    ),
    ...(isTree
      ? []
      : [
          readRow('backup 1: bytes read (rchar)', 'backup1'),
          readRow('backup 2: bytes read (rchar)', 'backup2'),
          readRow('backup 3: bytes read (rchar)', 'backup3'),
          storedRow('backup 1: newly stored (vault growth, du -sb)', 'backup1'),
          storedRow('backup 2: newly stored (vault growth, du -sb)', 'backup2'),
          storedRow('backup 3: newly stored (vault growth, du -sb)', 'backup3'),
        ]),
    timeRow('restore latest point', 'restore', true),
    {
      label: `restore ÷ tar -x${isTree ? '' : 'S'} time`,
      ratio: null,
      cell: (steps) => {
        const r = steps.restore;
        if (!r?.ok || tarX == null) return { text: 'n/a' };
        return { text: fmtRatio(r.seconds / tarX) };
      },
    },
    {
      label: isTree ? 'restore verified (paths, sizes, SHA-1)' : 'restore verified (cmp)',
      ratio: null,
      cell: (steps) => {
        const r = steps.restore;
        if (!r?.ok) return { text: r ? 'n/a' : 'n/a' };
        if (!r.check.ok)
          return { text: `**${noteRef(r.check.detail).replace('FAILED', 'MISMATCH')}**` };
        return { text: r.check.mtimeDiffers ? `ok (${r.check.mtimeDiffers} mtimes differ)` : 'ok' };
      },
    },
  ];
  if (!isTree) {
    rows.push({
      label: 'restored image allocated (du -B1)',
      ratio: 'size',
      cell: (steps) => {
        const r = steps.restore;
        if (!r?.ok || r.check?.allocated == null) return { text: 'n/a' };
        const share = ((r.check.allocated / r.check.apparent) * 100).toFixed(0);
        const holes =
          result.sourceAllocated != null && r.check.allocated <= result.sourceAllocated * 1.1
            ? 'holes kept'
            : r.check.allocated >= r.check.apparent * 0.9
              ? 'holes filled'
              : 'holes partly kept';
        return {
          text: `${fmtMiB(r.check.allocated)} (${share}%, ${holes})`,
          num: r.check.allocated,
        };
      },
    });
  }
  rows.push(
    vaultRow('vault size after backup 1 (du -sb)', 'backup1'),
    vaultRow('vault size after backup 3 (du -sb)', 'backup3'),
    {
      label: 'peak RSS (max over all runs)',
      ratio: 'size',
      cell: (steps) => {
        const p = peak(steps, ['backup1', 'backup2', 'backup3', 'restore']);
        return p == null ? { text: 'n/a' } : { text: fmtMiB(p * KiB), num: p };
      },
    },
    {
      label: 'CPU time of backup 1 (user+sys)',
      ratio: 'time',
      cell: (steps) => {
        const c = cpuTotal(steps, ['backup1']);
        return c == null ? { text: 'n/a' } : { text: fmtSeconds(c), num: c };
      },
    },
    {
      label: 'CPU time, 3 backups + restore (user+sys)',
      ratio: 'time',
      cell: (steps) => {
        const c = cpuTotal(steps, ['backup1', 'backup2', 'backup3', 'restore']);
        return c == null ? { text: 'n/a' } : { text: fmtSeconds(c), num: c };
      },
    },
  );

  const header = ['measurement', ...tools, ...ratioCols.map(([h, o]) => `${h} vs ${o}`)];
  const lines = [
    `| ${header.join(' | ')} |`,
    `| ${header.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`,
  ];
  for (const row of rows) {
    const cells = tools.map((t) => row.cell(result.tools[t] ?? {}));
    const byTool = Object.fromEntries(tools.map((t, i) => [t, cells[i]]));
    const ratios = ratioCols.map(([subject, o]) => {
      const h = byTool[subject]?.num;
      const v = byTool[o]?.num;
      if (row.ratio == null || h == null || v == null || h === 0 || v === 0) return '–';
      return fmtRatio(row.ratio === 'time' ? v / h : h / v);
    });
    lines.push(`| ${[row.label, ...cells.map((c) => c.text), ...ratios].join(' | ')} |`);
  }
  return lines.join('\n');
}

function renderBaseline(result, sourceBytes) {
  const b = result.baseline;
  const fmt = (r) =>
    r?.ok
      ? `${fmtSeconds(r.seconds)} (${(sourceBytes / MiB / r.seconds).toFixed(0)} MiB/s, ` +
        (r.maxSeconds != null ? `slowest ${fmtSeconds(r.maxSeconds)}, ` : '') +
        `peak RSS ${fmtMiB(r.rssKiB * KiB)})`
      : `FAILED: ${r?.error ?? 'n/a'}`;
  const s = result.kind === 'tree' ? '' : 'S';
  const lines = [
    `Baseline (the ${result.kind === 'tree' ? 'tree' : 'image'} as restored, after the change; measured after the restores): ` +
      `\`tar -c${s}f\` ${fmt(b.c)}; \`tar -x${s}f\` into an empty directory ${fmt(b.x)}` +
      (b.check ? `; extraction check: ${b.check.ok ? 'ok' : b.check.detail}` : '') +
      '.',
  ];
  return lines.join('\n');
}

function machineFacts() {
  const cpus = os.cpus();
  const df = sh('df', ['--output=fstype', WORK]);
  const fsType = df.status === 0 ? (df.stdout.trim().split('\n')[1] ?? 'unknown') : 'unknown';
  return {
    nproc: firstLine('nproc', []),
    cpu: cpus[0]?.model ?? 'unknown',
    memGiB: (os.totalmem() / GiB).toFixed(1),
    kernel: `${os.type()} ${os.release()}`,
    fsType,
    runFsType: (() => {
      const r = sh('df', ['--output=fstype', RUN]);
      return r.status === 0 ? (r.stdout.trim().split('\n')[1] ?? 'unknown') : 'unknown';
    })(),
    node: process.version,
    tar: firstLine('tar', ['--version']),
  };
}

function render({
  opts,
  profileName,
  data,
  facts,
  versions,
  results,
  loadStart,
  loadEnd,
  seconds,
}) {
  const out = [];
  const notes = [];
  const mean = loadSamples.reduce((a, b) => a + b, 0) / Math.max(1, loadSamples.length);
  const load =
    `${loadStart} at start, ${loadEnd} at end, mean ${mean.toFixed(2)} and max ` +
    `${Math.max(0, ...loadSamples).toFixed(2)} after the measured commands`;
  out.push(`# Holdfast benchmark: ${opts.tools.join(' / ')}`);
  out.push('');
  out.push(
    `- date: ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC; profile: ${profileName}; run time ${(seconds / 60).toFixed(1)} min`,
  );
  out.push(
    `- machine: ${facts.nproc} cores (${facts.cpu}), ${facts.memGiB} GiB RAM, ${facts.kernel}, bench/work on ${facts.fsType}${facts.runFsType && facts.runFsType !== facts.fsType ? ` (the working copy bench/work/run and the mirrors on ${facts.runFsType}, loop-mounted, reflink on)` : ''}; ` +
      `1-minute load average ${load} (the machine is shared: above ${facts.nproc} means other work competed)`,
  );
  out.push(
    `- software: node ${facts.node}; ${facts.tar}; ${opts.tools.map((t) => versions[t] ?? `${t}: unknown`).join('; ')}`,
  );
  const tr = data.tree;
  out.push(
    `- tree: first ${fmtMiB(tr.bytes)} of ${TREE_SOURCE} in sorted order: ${tr.files} files, ${tr.symlinks} symlinks, ` +
      `${tr.dirs} directories (mtimes kept, hard links copied as separate files)`,
  );
  const im = data.image;
  out.push(
    `- disk image: ${fmtMiB(im.size)} sparse file, ${im.blocks.length} data extents of 1 MiB (${fmtMiB(im.allocated)} allocated): ` +
      `${im.kinds.random} random, ${im.kinds.text} log text, ${im.kinds.records} database-like pages`,
  );
  out.push(
    `- settings: ${opts.tools.map((t) => `${t}: ${TOOLS[t].settings}`).join('; ')}. ` +
      'Caches live in bench/work and are empty before the first backup.',
  );
  const times =
    opts.repeat === 1
      ? 'once'
      : `${opts.repeat} times (shown: fastest run, as load from other work only adds time, and the ` +
        'slowest; median vault size; max RSS)';
  out.push(
    `- method: each command runs ${times} under \`/usr/bin/time -f "%e %M %U %S"\` (wall seconds, peak RSS); page cache warm ` +
      '(the data is read once before each first backup), `sync` after every command, outside the timing. ' +
      'Ratio columns: for times other ÷ holdfast (above 1 means holdfast is faster), ' +
      'for sizes and memory holdfast ÷ other (below 1 means holdfast uses less).',
  );
  for (const r of results) {
    out.push('');
    if (r.kind === 'tree') {
      const c = r.change;
      out.push(`## Tree (${fmtMiB(data.tree.bytes)}, ${data.tree.files} files)`);
      out.push('');
      out.push(
        `Small change before backup 3: ${c.files} files (${((c.files / data.tree.files) * 100).toFixed(1)}%): ` +
          `${c.appended} appended to, ${c.rewritten} rewritten in the middle (up to 4 KiB), ${c.touched} only touched; ` +
          `all get a new mtime. Restore is of the latest point (after the change).`,
      );
      out.push('');
      out.push(renderTable(r, toolsFor('tree', opts.tools), data.tree.bytes, notes));
      out.push('');
      out.push(renderBaseline(r, data.tree.bytes));
    } else {
      out.push(
        `## Disk image (${fmtMiB(data.image.size)} apparent, ${fmtMiB(data.image.allocated)} allocated)`,
      );
      out.push('');
      out.push(
        `Small change before backup 3: ${r.change.blocks} of ${data.image.blocks.length} data blocks overwritten ` +
          'with new random data' +
          (r.change.throughQemu
            ? ', written through qemu-storage-daemon (a writable NBD export and qemu-io) so that its ' +
              'dirty bitmap sees them; the same bytes for every tool'
            : '') +
          `. Throughput is against the ${fmtMiB(data.image.size)} apparent size. ` +
          'Bytes read: the rchar counter of /proc/self/io across the command (its reaped children ' +
          'included): every byte its read() calls returned, holes as zeros and page cache included, ' +
          'also program files, vault, index and cache reads. For holdfast-machine and holdfast-qemu ' +
          "the brackets split it by their own counters: the capture's read of the source (every block " +
          'holding data hashed against the block map, holes known from the extent map not read; for ' +
          "holdfast-qemu after its first capture only the blocks the daemon's dirty bitmap names) " +
          "and the backup's read of the mirror. Newly stored: growth of the vault " +
          'directory (`du -sb`) over the backup.',
      );
      out.push('');
      out.push(renderTable(r, toolsFor('disk', opts.tools), data.image.size, notes));
      out.push('');
      out.push(renderBaseline(r, data.image.size));
    }
  }
  if (notes.length) {
    out.push('');
    out.push('Notes:');
    out.push('');
    notes.forEach((n, i) => out.push(`${i + 1}. ${n.replace(/\|/g, '\\|')}`));
  }
  out.push('');
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------
// object storage

/** Holdfast's first backup of the tree into each object store; one row per store. */
function measureObjectStores(source, sourceBytes, stores) {
  const rows = [];
  for (const name of stores) {
    log(`== tree: holdfast into ${name}`);
    let store;
    try {
      store = startStore(name, ROOT, path.join(WORK, `store-${name}`));
    } catch (e) {
      log(`  FAILED ${e.message}`);
      rows.push({ name, ok: false, error: e.message });
      continue;
    }
    try {
      const env = { ...baseEnv(), ...store.env, HOLDFAST_PASSWORD: PASSWORD };
      const statsFile = path.join(LOGS, `store-${name}-stats.json`);
      const init = timed(
        `store-${name}-init`,
        process.execPath,
        [HOLDFAST_BIN, 'init', '--vault', store.vault],
        { cwd: RUN, env },
      );
      const backup = init.ok
        ? timed(
            `store-${name}-backup`,
            process.execPath,
            [HOLDFAST_BIN, 'backup', source, '--vault', store.vault, '--json'],
            { cwd: RUN, env: { ...env, HOLDFAST_BACKEND_STATS: statsFile } },
          )
        : init;
      const traffic = backup.ok ? JSON.parse(fs.readFileSync(statsFile, 'utf8')) : null;
      rows.push({
        name,
        label: store.label,
        sourceBytes,
        ok: backup.ok,
        error: backup.error,
        seconds: backup.seconds,
        rssKiB: backup.rssKiB,
        traffic,
      });
    } finally {
      store.stop();
    }
  }
  return rows;
}

function renderObjectStores(rows, results) {
  if (rows.length === 0) return '';
  const tree = results.find((r) => r.kind === 'tree');
  const local = tree?.tools.holdfast?.backup1;
  const lines = [
    '',
    '## Object storage: holdfast first backup of the tree',
    '',
    'Servers on this machine (127.0.0.1): the figures show the cost of the protocol and the',
    "request pattern, not a cloud's bandwidth. Requests counted by Holdfast's backend wrappers.",
    '',
    '| target | time | MiB/s | vs local disk | requests | requests per GiB stored | stored |',
    '|---|---|---|---|---|---|---|',
  ];
  if (local?.ok)
    lines.push(
      `| local disk | ${fmtSeconds(local.seconds)} | ${((rows[0]?.sourceBytes ?? 0) / MiB / local.seconds) | 0} | 1.00× | — | — | — |`,
    );
  for (const r of rows) {
    if (!r.ok) {
      lines.push(
        `| ${r.label ?? r.name} | failed: ${scrub(r.error ?? '').slice(0, 120)} | | | | | |`,
      );
      continue;
    }
    const t = r.traffic;
    const perGiB = t.bytesWritten > 0 ? t.requests / (t.bytesWritten / GiB) : 0;
    const ratio = local?.ok ? `${(r.seconds / local.seconds).toFixed(2)}× slower` : '—';
    lines.push(
      `| ${r.label} | ${fmtSeconds(r.seconds)} | ${(r.sourceBytes / MiB / r.seconds).toFixed(0)} | ${ratio} | ${t.requests} | ${perGiB.toFixed(0)} | ${fmtMiB(t.bytesWritten)} |`,
    );
  }
  return lines.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------
// main

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const profileName = opts.quick ? 'quick' : 'full';
  commandTimeout = opts.timeout;
  // A signal ends the run through process.exit, so that the exit hooks run (they stop
  // qemu-storage-daemon and unmount the XFS volume).
  for (const [signal, number] of Object.entries({ SIGHUP: 1, SIGINT: 2, SIGTERM: 15 }))
    process.once(signal, () => process.exit(128 + number));
  fs.mkdirSync(WORK, { recursive: true });
  const kinds = opts.only ? [opts.only] : ['tree', 'disk'];
  const used = opts.tools.filter((t) => kinds.some((k) => toolsFor(k, [t]).length > 0));
  ensurePrograms(used, opts.fs);

  // A run stopped by force may have left the XFS volume mounted.
  if (sh('mountpoint', ['-q', RUN]).status === 0) sh('umount', [RUN]);
  for (const d of [RUN, VAULTS, RESTORES, LOGS, TARS, HOME, CACHE, MIRRORS]) rmrf(d);
  for (const d of [RUN, VAULTS, RESTORES, LOGS, TARS, HOME, CACHE])
    fs.mkdirSync(d, { recursive: true });
  if (opts.fs === 'xfs') {
    mountXfs();
    // Also when a step ends the run early (fatal exits at once).
    process.on('exit', unmountXfs);
  }
  await runAll(opts, profileName, kinds);
}

/** Makes an XFS file system with reflink in an image file and mounts it on bench/work/run. */
function mountXfs() {
  if (typeof process.getuid === 'function' && process.getuid() !== 0)
    fatal('--fs xfs mounts a file system through a loop device: run it as root');
  rmrf(XFS_VOLUME);
  // Sparse: room for the working copy, its restore by a tool, and the mirrors.
  fs.closeSync(fs.openSync(XFS_VOLUME, 'w'));
  fs.truncateSync(XFS_VOLUME, 16 * GiB);
  for (const [cmd, args] of [
    ['mkfs.xfs', ['-q', '-m', 'reflink=1', XFS_VOLUME]],
    ['mount', ['-o', 'loop', XFS_VOLUME, RUN]],
  ]) {
    const r = sh(cmd, args);
    if (r.status !== 0) fatal(`${cmd} ${args.join(' ')} failed: ${r.stderr || r.error?.message}`);
  }
  MIRRORS = path.join(RUN, '.mirrors');
  log(`bench/work/run is an XFS file system with reflink (${XFS_VOLUME}, loop-mounted)`);
}

function unmountXfs() {
  const r = sh('umount', [RUN]);
  if (r.status !== 0) log(`umount ${RUN} failed: ${r.stderr}`);
  else rmrf(XFS_VOLUME);
}

async function runAll(opts, profileName, kinds) {
  const loadStart = os.loadavg()[0].toFixed(2);
  const facts = machineFacts();
  const versions = {};
  for (const t of opts.tools) {
    try {
      versions[t] = TOOLS[t].version() ?? `${t}: version unknown`;
    } catch (e) {
      versions[t] = `${t}: version unknown (${e.message})`;
    }
  }
  log(`tools: ${opts.tools.map((t) => versions[t]).join('; ')}`);

  const data = prepareData(profileName, opts.rebuild);
  const results = [];
  let objectStores = [];
  for (const kind of kinds) {
    const runs = [];
    for (let i = 1; i <= opts.repeat; i++) {
      if (opts.repeat > 1) log(`== ${kind}: round ${i} of ${opts.repeat}`);
      runs.push(await runDataSet(kind, data, opts.tools, opts));
    }
    results.push(aggregate(runs));
    if (kind === 'tree' && opts.tools.includes('holdfast'))
      objectStores = measureObjectStores(path.join(RUN, 'tree'), data.tree.bytes, opts.stores);
    rmrf(path.join(RUN, kind === 'tree' ? 'tree' : 'disk.img'));
    if (kind === 'disk' && !opts.keep) rmrf(MIRRORS);
  }

  const seconds = (Date.now() - started) / 1000;
  const loadEnd = os.loadavg()[0].toFixed(2);
  const markdown =
    render({
      opts,
      profileName,
      data,
      facts,
      versions,
      results,
      loadStart,
      loadEnd,
      seconds,
    }) + renderObjectStores(objectStores, results);
  fs.writeFileSync(path.join(WORK, 'last-results.md'), markdown);
  const raw = {
    opts,
    profileName,
    facts,
    versions,
    data: { tree: data.tree, image: { ...data.image, blocks: undefined } },
    results,
    objectStores,
  };
  fs.writeFileSync(path.join(WORK, 'last-results.json'), JSON.stringify(raw, null, 1));
  process.stdout.write(markdown);
  log(`done in ${(seconds / 60).toFixed(1)} min; results in bench/work/last-results.md`);
}

main().catch((error) => fatal(error?.stack ?? String(error)));
