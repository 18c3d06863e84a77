/** rqcast public API. */
export * from './errors';
export * from './fec';
