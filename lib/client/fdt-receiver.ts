/**
 * FdtReceiver: decodes the FLUTE File Delivery Table instances of one
 * channel (TOI 0, RFC 6726 §3.3) and parses them.
 *
 * Every TOI 0 packet carries EXT_FDT (the FDT Instance ID, RFC 6726
 * §3.4.1) and, in rqcast, EXT_FTI (the instance's RaptorQ OTI, RFC 5775
 * §4.2), so a receiver can start decoding any instance from any packet.
 * Instances are decoded independently, keyed by instance ID; an instance is
 * parsed once and then ignored. The FDT is small and rare next to the data,
 * so its symbols go to the decoder synchronously.
 *
 * Bounds (the packets are remote input): at most `maxInstances` instances
 * decoding at once (the oldest is dropped), an OTI whose transfer length
 * exceeds `maxLength` is refused, and packets whose OTI disagrees with the
 * first one seen for their instance are dropped.
 */
import { ObjectDecoder } from '../fec/decoder';
import type { RawCodecBinding } from '../native';
import { AlcPacket } from '../protocol/alc';
import { FdtInstance, FDT_MAX_CHARS, tryParseFdt } from '../protocol/fdt';
import { sameOti } from '../protocol/oti';
import type { Oti as WireOti } from '../protocol/oti';
import { toDecoderOti } from './object-receiver';
import { codecPackets } from './symbols';

export interface FdtReceiverOptions {
  /** Instances decoding at once. Default 4. */
  maxInstances?: number;
  /** Largest FDT transfer length accepted, in bytes. Default 4 x FDT_MAX_CHARS (UTF-8). */
  maxLength?: number;
  /** Instance IDs remembered as done. Default 64. */
  maxRemembered?: number;
  binding?: RawCodecBinding;
}

export interface FdtReceiverStats {
  packets: number;
  /** No EXT_FTI, an OTI too large or invalid, or one that differs from the instance's. */
  rejected: number;
  /** Packets of an instance already parsed. */
  late: number;
  instancesDecoded: number;
  /** Decoded instances that were not a valid FDT (RFC 6726 §3.4.2 schema). */
  parseFailures: number;
}

interface Decoding {
  oti: WireOti;
  decoder: ObjectDecoder;
}


export class FdtReceiver {
  readonly stats: FdtReceiverStats = { packets: 0, rejected: 0, late: 0, instancesDecoded: 0, parseFailures: 0 };
  private readonly decoding = new Map<number, Decoding>();
  private readonly finished = new Set<number>();
  private readonly maxInstances: number;
  private readonly maxLength: number;
  private readonly maxRemembered: number;
  private readonly binding?: RawCodecBinding;

  constructor(options: FdtReceiverOptions = {}) {
    this.maxInstances = options.maxInstances ?? 4;
    this.maxLength = options.maxLength ?? 4 * FDT_MAX_CHARS;
    this.maxRemembered = options.maxRemembered ?? 64;
    this.binding = options.binding;
  }

  /** Whether instance `id` was already decoded (and parsed or refused). */
  hasFinished(id: number): boolean {
    return this.finished.has(id);
  }

  /**
   * Adds one TOI 0 packet. Returns the FDT instance it completed, if any
   * (once per instance ID).
   */
  add(packet: AlcPacket): { instanceId: number; fdt: FdtInstance } | undefined {
    this.stats.packets++;
    const id = packet.fdt?.instanceId;
    const oti = packet.oti;
    if (id === undefined || oti === undefined || oti.transferLength > this.maxLength) {
      this.stats.rejected++;
      return undefined;
    }
    if (this.finished.has(id)) {
      this.stats.late++;
      return undefined;
    }
    let d = this.decoding.get(id);
    if (d === undefined) {
      let decoder: ObjectDecoder;
      try {
        decoder = this.binding ? new ObjectDecoder(toDecoderOti(oti), this.binding) : new ObjectDecoder(toDecoderOti(oti));
      } catch {
        this.stats.rejected++;
        return undefined;
      }
      if (this.decoding.size >= this.maxInstances) {
        const [oldest, od] = this.decoding.entries().next().value as [number, Decoding];
        od.decoder.close();
        this.decoding.delete(oldest);
      }
      d = { oti, decoder };
      this.decoding.set(id, d);
    } else if (!sameOti(d.oti, oti)) {
      this.stats.rejected++;
      return undefined;
    }
    const symbols = codecPackets(packet, oti.symbolSize);
    if (symbols === undefined) {
      this.stats.rejected++;
      return undefined;
    }
    const r = d.decoder.pushMany(symbols, { skipInvalid: true });
    this.stats.rejected += r.rejected > 0 ? 1 : 0;
    if (!r.complete) return undefined;

    const bytes = d.decoder.result();
    d.decoder.close();
    this.decoding.delete(id);
    this.remember(id);
    this.stats.instancesDecoded++;
    const parsed = tryParseFdt(bytes);
    if (!parsed.ok) {
      this.stats.parseFailures++;
      return undefined;
    }
    return { instanceId: id, fdt: parsed.fdt };
  }

  /** Frees every decoder. */
  close(): void {
    for (const d of this.decoding.values()) d.decoder.close();
    this.decoding.clear();
  }

  private remember(id: number): void {
    this.finished.add(id);
    if (this.finished.size > this.maxRemembered) {
      const oldest = this.finished.values().next().value as number;
      this.finished.delete(oldest);
    }
  }
}
