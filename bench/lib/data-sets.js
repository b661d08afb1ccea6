// The data sets (a copy of /usr, a sparse image), built once per profile, and their small changes.

import fs from 'node:fs';
import path from 'node:path';
import {
  BLOCK,
  DATA_VERSION,
  IMAGE_CHANGE_FRACTION,
  MUTATION_MTIME,
  PROFILES,
  TREE_CHANGE_FRACTION,
  TREE_SOURCE,
  WORK,
} from './constants.js';
import { fmtMiB } from './format.js';
import { log, scrub } from './log.js';
import { manifest, summarize } from './manifest.js';
import {
  fillRandom,
  fillRecordBlock,
  fillTextBlock,
  mix32,
  pickDistinct,
  Rng,
} from './random-data.js';
import { duBytes, rmrf, syncDisks } from './sh.js';

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
export function prepareData(profileName, rebuild) {
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
export function mutateTree(root, entries) {
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
export function imageChange(blocks) {
  const rng = new Rng(0xb10c);
  const count = Math.max(1, Math.round(blocks.length * IMAGE_CHANGE_FRACTION));
  const picked = pickDistinct(blocks.length, count, rng).sort((a, b) => a - b);
  return picked.map((i) => ({ offset: blocks[i] * BLOCK, seed: mix32(0x2ec4, blocks[i]) }));
}

/** Writes an imageChange straight into the image file. */
export function mutateImage(file, change) {
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
