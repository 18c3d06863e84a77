export * from './errors';
export * from './replicator';
export * from './replicator-contract';
export * from './udp/receiver';
