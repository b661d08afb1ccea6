// The measured steps of one data set: backups, the small change, restores and their checks.

import fs from 'node:fs';
import path from 'node:path';
import { CACHE, HOME, RESTORES, RUN } from './constants.js';
import { imageChange, mutateImage, mutateTree } from './data-sets.js';
import { log, scrub } from './log.js';
import { manifest, summarize } from './manifest.js';
import { freshPageCache } from './page-cache.js';
import { duBytes, rmrf, syncDisks } from './sh.js';
import { timed } from './timed.js';
import { TOOLS, vaultOf } from './tools.js';

/**
 * The measured steps of one data set: two backups, the small change (through `qemu`, the daemon
 * serving the image, when there is one), a backup, restore and verification. Returns the manifest
 * of the working copy after the change, which every restore is checked against.
 */
export async function measureTools(kind, data, tools, opts, context) {
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
