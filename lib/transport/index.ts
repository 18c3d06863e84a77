export * from './errors';
export * from './replicator';
export * from './udp/receiver';
