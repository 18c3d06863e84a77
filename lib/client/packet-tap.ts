/**
 * PacketTap: a fetch that decodes nothing and hands every FDT instance and
 * every object data packet it takes to its owner instead (a relay in
 * forward mode, lib/relay/forward-relay.ts; docs/PROTOCOL.md §10.13).
 *
 * With a tap the registry wants no object (as `rqcast ls`: every TOI is
 * ignored, no receiver, no sink, no file) and the fetch is never finished:
 * it runs until it is closed, fails or times out. Packets reach the tap
 * after the data path's checks (the server's address, a joined TSI, the
 * loss hook), in arrival order, fast path and general path alike.
 */
import type { FdtInstance } from '../protocol/fdt';

export interface PacketTap {
  /** FDT instance `instanceId` applied on channel `channel` (TSI `tsi`) of session `source` (newer instances only). */
  fdt(source: number, channel: string, tsi: number, instanceId: number, instance: FdtInstance): void;
  /**
   * An object (TOI ≥ 1) data packet of channel `tsi` of session `source`:
   * its FEC Payload ID (SBN, ESI of the first symbol) and its symbols, a
   * view valid only during the call.
   */
  packet(source: number, tsi: number, toi: number, sbn: number, esi: number, symbols: Uint8Array): void;
}
