// Command-line options of bench/run.js and its help text.

import { STORES } from '../object-stores.js';
import { ALL_TOOLS } from './constants.js';
import { fatal } from './log.js';

export function usage() {
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

export function parseArgs(argv) {
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
