export * from './errors';
export * from './replicator';
export * from './replicator-contract';
export * from './server-transport';
export * from './client-transport';
export * from './udp/client-socket';
export * from './udp/receiver';
export * from './udp/server-transport';
