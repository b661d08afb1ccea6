// The rows of a data set's results table: each a label, a cell per tool and how to compare cells.

import { KiB, MiB } from './constants.js';
import { fmtAmount, fmtMiB, fmtRatio, fmtSeconds } from './format.js';

const ALL_STEPS = ['backup1', 'backup2', 'backup3', 'restore'];

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

/**
 * A row whose cell comes from one step's result: `value(r)` for a step that succeeded, the
 * failure's note reference (`failCell`) otherwise.
 */
function stepRow(label, ratio, name, failCell, value) {
  return {
    label,
    ratio,
    cell: (steps) => {
      const r = steps[name];
      return r?.ok ? value(r) : { text: failCell(r) };
    },
  };
}

function timeRow(label, name, rateBytes, failCell) {
  return stepRow(label, 'time', name, failCell, (r) => {
    const extra = [];
    if (rateBytes != null) extra.push(`${(rateBytes / MiB / r.seconds).toFixed(0)} MiB/s`);
    if (r.maxSeconds != null) extra.push(`slowest ${fmtSeconds(r.maxSeconds)}`);
    // The machine path's split, from its own clock (of the one run shown: no repeats).
    const m = r.summary;
    if (m?.captureSeconds != null && r.runs == null)
      extra.push(`capture ${fmtSeconds(m.captureSeconds)}, backup ${fmtSeconds(m.backupSeconds)}`);
    const suffix = extra.length ? ` (${extra.join(', ')})` : '';
    return { text: `${fmtSeconds(r.seconds)}${suffix}`, num: r.seconds };
  });
}

/** The disk image's rows of bytes read and newly stored per backup. */
function imageBackupRows(failCell) {
  const backups = ['backup1', 'backup2', 'backup3'];
  const read = backups.map((name, i) =>
    stepRow(`backup ${i + 1}: bytes read (rchar)`, 'size', name, failCell, (r) => {
      if (r.io == null) return { text: 'n/a' };
      const m = r.summary;
      const split =
        m?.sourceBytesRead != null
          ? ` (source ${fmtAmount(m.sourceBytesRead)} hashed, mirror ${fmtAmount(m.mirrorBytesRead)})`
          : '';
      return { text: `${fmtAmount(r.io.rchar)}${split}`, num: r.io.rchar };
    }),
  );
  const stored = backups.map((name, i) =>
    stepRow(`backup ${i + 1}: newly stored (vault growth, du -sb)`, 'size', name, failCell, (r) =>
      r.storedBytes == null
        ? { text: 'n/a' }
        : { text: fmtAmount(r.storedBytes), num: r.storedBytes },
    ),
  );
  return [...read, ...stored];
}

/** Restore against `tar -x`, and whether the restored data matched. */
function restoreCheckRows(isTree, tarX, noteRef) {
  return [
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
        if (!r?.ok) return { text: 'n/a' };
        if (!r.check.ok)
          return { text: `**${noteRef(r.check.detail).replace('FAILED', 'MISMATCH')}**` };
        return { text: r.check.mtimeDiffers ? `ok (${r.check.mtimeDiffers} mtimes differ)` : 'ok' };
      },
    },
  ];
}

/** How much of the restored image is allocated, and whether its holes stayed holes. */
function allocatedRow(sourceAllocated) {
  return {
    label: 'restored image allocated (du -B1)',
    ratio: 'size',
    cell: (steps) => {
      const r = steps.restore;
      if (!r?.ok || r.check?.allocated == null) return { text: 'n/a' };
      const share = ((r.check.allocated / r.check.apparent) * 100).toFixed(0);
      const holes =
        sourceAllocated != null && r.check.allocated <= sourceAllocated * 1.1
          ? 'holes kept'
          : r.check.allocated >= r.check.apparent * 0.9
            ? 'holes filled'
            : 'holes partly kept';
      return {
        text: `${fmtMiB(r.check.allocated)} (${share}%, ${holes})`,
        num: r.check.allocated,
      };
    },
  };
}

/** Vault sizes, peak memory and CPU time. */
function resourceRows(failCell) {
  const vault = (label, name) =>
    stepRow(label, 'size', name, failCell, (r) => ({
      text: fmtMiB(r.vaultBytes),
      num: r.vaultBytes,
    }));
  const cpu = (label, names) => ({
    label,
    ratio: 'time',
    cell: (steps) => {
      const c = cpuTotal(steps, names);
      return c == null ? { text: 'n/a' } : { text: fmtSeconds(c), num: c };
    },
  });
  return [
    vault('vault size after backup 1 (du -sb)', 'backup1'),
    vault('vault size after backup 3 (du -sb)', 'backup3'),
    {
      label: 'peak RSS (max over all runs)',
      ratio: 'size',
      cell: (steps) => {
        const p = peak(steps, ALL_STEPS);
        return p == null ? { text: 'n/a' } : { text: fmtMiB(p * KiB), num: p };
      },
    },
    cpu('CPU time of backup 1 (user+sys)', ['backup1']),
    cpu('CPU time, 3 backups + restore (user+sys)', ALL_STEPS),
  ];
}

/**
 * Every row of one data set's table, in order. Each row: a label, `cell(steps)` giving a tool's
 * `{text, num}`, and the ratio kind ('time', 'size' or null for none). `noteRef(error)` numbers
 * a failure for the notes under the tables.
 */
export function tableRows(result, sourceBytes, noteRef) {
  const isTree = result.kind === 'tree';
  const tarX = result.baseline.x?.ok ? result.baseline.x.seconds : null;
  const failCell = (r) => {
    if (!r) return 'n/a';
    const ref = noteRef(r.error);
    return r.skipped ? ref.replace('FAILED', 'skipped') : ref;
  };
  return [
    timeRow('backup 1: first', 'backup1', sourceBytes, failCell),
    timeRow('backup 2: unchanged', 'backup2', null, failCell),
    timeRow(
      isTree ? 'backup 3: after ~3% of files changed' : 'backup 3: after 2% of blocks changed',
      'backup3',
      null,
      failCell,
    ),
    ...(isTree ? [] : imageBackupRows(failCell)),
    timeRow('restore latest point', 'restore', sourceBytes, failCell),
    ...restoreCheckRows(isTree, tarX, noteRef),
    ...(isTree ? [] : [allocatedRow(result.sourceAllocated)]),
    ...resourceRows(failCell),
  ];
}
