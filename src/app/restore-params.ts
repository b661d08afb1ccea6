import type { OverwriteMode } from '../engine/index.js';

/** How a machine point is restored (docs/disks.md "Restore options"). */
export const MACHINE_RESTORE_MODES = ['disks', 'replace', 'new-machine', 'files'] as const;
export type MachineRestoreMode = (typeof MACHINE_RESTORE_MODES)[number];

/** Phases of a restore job. */
export const RESTORE_PHASES = ['restore', 'verify'] as const;

/** Parameters a restore job is queued with (validated by the API before). */
export interface RestoreJobParams {
  /** The catalog point; empty for an image deployment. */
  readonly point: string;
  /** An image deployment: the image's name (its vault is the job's). */
  readonly image?: string;
  /** A disk snapshot's restore: its name (its vault is the job's). */
  readonly diskSnapshot?: string;
  /** Required except when a machine's disks are replaced in place. */
  readonly target?: string;
  readonly include?: string[];
  readonly exclude?: string[];
  readonly overwrite?: OverwriteMode;
  readonly verify?: boolean;
  readonly tier?: 'auto' | 'snapshot' | 'vault';
  /** Cross-region restore from a GRS vault's secondary copy (never the snapshot tier). */
  readonly from?: 'primary' | 'secondary';
  /** Machine points: restore as disks, as a new machine, or in place of the machine's disks. */
  readonly as?: MachineRestoreMode;
  /** Machine points restored as disks or a new machine: the disk image format. */
  readonly format?: 'raw' | 'qcow2';
  /** `as: new-machine`: the new machine's name. */
  readonly newName?: string;
  /** `as: replace`: replace disks even while a process has them open. */
  readonly force?: boolean;
  /** `as: files`: paths inside the point's disks to extract. */
  readonly paths?: string[];
}
