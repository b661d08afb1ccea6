// The tools compared: their commands, environments, versions and settings, and their vaults.

import fs from 'node:fs';
import path from 'node:path';
import {
  CACHE,
  HOLDFAST_BIN,
  HOLDFAST_MAIN,
  HOME,
  MACHINE_MAIN,
  MACHINE_SCRIPT,
  MIRRORS,
  PASSWORD,
  QEMU_PROGRAMS,
  ROOT,
  VAULTS,
} from './constants.js';
import { commandExists, firstLine, sh } from './sh.js';

export function baseEnv() {
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

export const TOOLS = {
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

/** A tool's vault for one data set. */
export function vaultOf(tool, kind) {
  return path.join(VAULTS, `${tool}-${kind}`);
}

/** The tools that take part in a data set: holdfast-machine and holdfast-qemu only in the image's. */
export function toolsFor(kind, tools) {
  return tools.filter((t) => TOOLS[t].kinds?.includes(kind) ?? true);
}
