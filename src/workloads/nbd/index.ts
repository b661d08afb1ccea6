/**
 * nbd: a read-only NBD server exporting disks (DiskReader) for file-level recovery, and a small
 * client that reads a metadata context (a QEMU dirty bitmap) from another NBD server.
 */
export { startNbdExport, type NbdExport, type NbdExportOptions } from './nbd-export.js';
export type { NbdErrorHandler } from './session.js';
export type { NbdFailedRead } from './transmission.js';
export { flaggedExtents, type MetaContextQuery } from './block-status.js';
export { openNbdDisk } from './nbd-disk.js';
