/** qemu: talks to a running QEMU (or qemu-storage-daemon) over QMP, its machine protocol. */
export { QmpClient, QmpError } from './qmp.js';
export type { QemuVersion, QmpEvent } from './qmp.js';
