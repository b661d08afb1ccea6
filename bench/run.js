#!/usr/bin/env node
// Side-by-side benchmark of holdfast, restic and borg on the same data.
// See bench/README.md; `node bench/run.js --help` lists the options.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { aggregate } from './lib/aggregate.js';
import { CACHE, HOME, LOGS, MIRRORS, RESTORES, RUN, TARS, VAULTS, WORK } from './lib/constants.js';
import { prepareData } from './lib/data-sets.js';
import { ensurePrograms } from './lib/ensure-programs.js';
import { fatal, log, started } from './lib/log.js';
import { machineFacts } from './lib/machine-facts.js';
import { measureObjectStores, renderObjectStores } from './lib/measure-object-stores.js';
import { parseArgs } from './lib/parse-args.js';
import { render } from './lib/render.js';
import { runDataSet } from './lib/run-data-set.js';
import { rmrf, sh } from './lib/sh.js';
import { setCommandTimeout } from './lib/timed.js';
import { TOOLS, toolsFor } from './lib/tools.js';
import { mountXfs, unmountXfs } from './lib/xfs-volume.js';

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const profileName = opts.quick ? 'quick' : 'full';
  setCommandTimeout(opts.timeout);
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
