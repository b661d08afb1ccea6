/** workloads: sources and sinks of data — today the partition tables of disk images. */
export * from './partition-table.js';
export * from './disk-reader.js';
