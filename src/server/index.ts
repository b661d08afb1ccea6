/** server: the REST API, the metrics endpoint and the process that runs the control plane. */
export * from './run-server.js';
