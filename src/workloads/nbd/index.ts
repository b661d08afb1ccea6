/** nbd: a read-only NBD server exporting disks (DiskReader) for file-level recovery. */
export { startNbdExport, type NbdExport, type NbdExportOptions } from './nbd-export.js';
export type { NbdErrorHandler } from './session.js';
export type { NbdFailedRead } from './transmission.js';
