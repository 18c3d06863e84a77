/**
 * rqcast wire formats: control messages, ALC/LCT data packets, FLUTE FDT
 * instances, TCP framing. The contract is docs/PROTOCOL.md.
 */
export * from './messages';
export * from './errors';
export { RejectCounters } from './counters';
export * from './control-header';
export { encodeControl, decodeControl } from './control';
export type { ControlDecodeResult, ControlCounters } from './control';
export { lostRanges, seqDistance } from './ack';
export { needEntries } from './need';
export * from './framing';
export * from './oti';
export * from './lct';
export * from './alc';
export * from './fdt';
