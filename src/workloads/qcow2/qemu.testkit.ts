import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureCommand } from '../../core/os-tools.testkit.js';

/** Makes sure qemu-img and qemu-io are there (installing qemu-utils as root, as CI runs). */
export function ensureQemu(): void {
  ensureCommand('qemu-img', 'qemu-utils');
  ensureCommand('qemu-io', 'qemu-utils');
}

/** Runs a qemu tool, failing the test with its stderr when it fails. */
export function qemu(tool: 'qemu-img' | 'qemu-io', args: string[]): string {
  try {
    return execFileSync(tool, args, { stdio: 'pipe', timeout: 60_000 }).toString();
  } catch (error) {
    const e = error as { stderr?: Buffer; stdout?: Buffer; message: string };
    throw new Error(
      `${tool} ${args.join(' ')} failed: ${e.stderr?.toString() ?? ''}${e.stdout?.toString() ?? e.message}`,
    );
  }
}

/** Writes `pattern` bytes at guest `offset` (qemu-io's -P), or zeros with `-z` when `zero`. */
export function qemuWrite(path: string, writes: readonly QemuWrite[]): void {
  const commands = writes.flatMap((w) => [
    '-c',
    w.zero
      ? `write -z ${w.offset} ${w.length}`
      : `write -P ${w.pattern ?? 0} ${w.offset} ${w.length}`,
  ]);
  qemu('qemu-io', ['-f', 'qcow2', ...commands, path]);
}

/** One write qemu-io makes into a test image. */
export interface QemuWrite {
  readonly offset: number;
  readonly length: number;
  readonly pattern?: number;
  readonly zero?: boolean;
}

/** The guest bytes of `path` as qemu sees them (`qemu-img convert -O raw`). */
export function qemuRaw(path: string, format = 'qcow2'): Buffer {
  const raw = `${path}.raw`;
  qemu('qemu-img', ['convert', '-f', format, '-O', 'raw', path, raw]);
  try {
    return readFileSync(raw);
  } finally {
    rmSync(raw);
  }
}

/** A temporary directory for one test file; `remove` deletes it. */
export function scratchDirectory(): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), 'holdfast-qcow2-'));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Converts the raw image `raw` to a compressed qcow2 at `path` with qemu-img's `-o` options. */
export function compressQcow2(raw: string, path: string, options: string): void {
  qemu('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', '-c', '-o', options, raw, path]);
}

/** A small seeded generator, so random offsets reproduce. */
export { seededRandom } from '../../engine/engine.testkit.js';

/** Host offsets of the L1 table and of the L2 entry for guest cluster 0. */
export function tables(image: Buffer): { l1: number; l2Entry: number } {
  const l1 = Number(image.readBigUInt64BE(40));
  const l2 = Number(image.readBigUInt64BE(l1) & 0x00fffffffffffe00n);
  return { l1, l2Entry: l2 };
}
