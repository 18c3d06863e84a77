/** rqcast public API. */
export * from './errors';
export * from './fec';
export * from './client';
export * from './transport';
export * from './server';
