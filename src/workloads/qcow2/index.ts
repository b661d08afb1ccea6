/** qcow2 disk images: read through their own structure, written for restores (docs/disks-qcow2.md). */
export { openQcow2, readQcow2 } from './qcow2-reader.js';
export type { GuestExtent, Qcow2Disk, Qcow2Image } from './qcow2-reader.js';
export type { Qcow2Compression, Qcow2Header } from './header.js';
export { detectImageFormat } from './image-format.js';
export type { ImageFormat } from './image-format.js';
export { writeQcow2 } from './qcow2-writer.js';
export type { GuestPiece, Qcow2WriteOptions, Qcow2WriteResult } from './qcow2-writer.js';
export { readGuestPieces } from './guest-pieces.js';
export type { GuestRange } from './guest-pieces.js';
export { dirtyBitmaps, dirtyRanges } from './dirty-bitmaps.js';
export type { DirtyBitmap, DirtyRange } from './dirty-bitmaps.js';
