/** workloads: sources and sinks of data — today the partition tables of disk images. */
export * from './partition-table.js';
export * from './disk-reader.js';
export * from './disk-in-place.js';
export { blockRanges, type BlockRange } from './data-extents.js';
export * from './byte-ranges.js';
export * from './slice-content.js';
export * from './image-archiver.js';
export * from './machine/machine-spec.js';
export * from './machine/capture.js';
export { mirrorBase, setMirrorBase } from './machine/disk-mirror.js';
export { forgetQemuTracking } from './machine/qemu-changes.js';
export * from './point-file.js';
export * from './qcow2/index.js';
export * from './nbd/index.js';
export * from './qemu/index.js';
export * from './hook-script.js';
export * from './ext4/index.js';
