// Facts about the machine for the results: cores, memory, kernel, file systems, versions.

import os from 'node:os';
import { GiB, RUN, WORK } from './constants.js';
import { firstLine, sh } from './sh.js';

export function machineFacts() {
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
