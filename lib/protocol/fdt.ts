/**
 * FLUTE File Delivery Table instances (RFC 6726 §3.4.2), the XML object that
 * rqcast sends as TOI 0 of every channel. One file per job:
 *
 * - fdt-schema.ts: namespaces, parser limits, the instance and File shapes,
 *   reject reasons, the NTP time of Expires;
 * - fdt-build.ts: `buildFdt`, the writer;
 * - fdt-parse.ts: `parseFdt` / `tryParseFdt`, the bounded parser, over the
 *   XML subset reader of xml-reader.ts.
 *
 * This module is their public face: import the FDT from here.
 */
export {
  FDT_NAMESPACE,
  RQCAST_FDT_NAMESPACE,
  FDT_MAX_CHARS,
  FDT_MAX_FILES,
  FDT_MAX_ELEMENTS,
  FDT_MAX_DEPTH,
  FDT_MAX_ATTRIBUTES,
  FDT_MAX_ATTRIBUTE_CHARS,
  FDT_MAX_CHANNELS,
  FDT_CHANNEL_TRANSPORTS,
  NTP_UNIX_OFFSET_S,
} from './fdt-schema';
export type { FdtChannel, FdtChannelTransport, FdtFile, FdtInstance, FdtRejectReason, FdtCounters, FdtParseResult } from './fdt-schema';
export { buildFdt, escapeAttribute } from './fdt-build';
export { parseFdt, tryParseFdt } from './fdt-parse';
