export * from './errors';
export * from './replicator';
