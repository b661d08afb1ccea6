// One data set, all tools: a fresh working copy, the measured steps, then the tar baseline.

import fs from 'node:fs';
import path from 'node:path';
import { CACHE, HOME, MIRRORS, RESTORES, RUN, TARS, VAULTS } from './constants.js';
import { log, scrub } from './log.js';
import { compareManifests, locateRestored, manifest } from './manifest.js';
import { measureTools } from './measure-tools.js';
import { freshCopy, freshPageCache, warmFile, warmTree } from './page-cache.js';
import { startQemuDaemon } from './qemu-storage-daemon.js';
import { duBytes, rmrf, sh } from './sh.js';
import { timed } from './timed.js';
import { baseEnv, TOOLS, toolsFor, vaultOf } from './tools.js';

/**
 * Runs the measured sequence for one data set. kind is 'tree' or 'disk'.
 * Returns per-tool step results plus the tar baseline.
 */
export async function runDataSet(kind, data, allTools, opts) {
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
