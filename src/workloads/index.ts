/** workloads: sources and sinks of data — today the partition tables of disk images. */
export * from './partition-table.js';
