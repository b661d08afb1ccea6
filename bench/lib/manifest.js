// Manifests: what a tree holds, to verify restores, and where a tool put a restored copy.

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { MiB } from './constants.js';

/** Walks root; returns entries sorted by path: {path, type, size, hash, mtime}. */
export function manifest(root) {
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

export function summarize(entries) {
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
export function compareManifests(expected, actual) {
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
export function locateRestored(target, srcAbs, kind, topNames) {
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
