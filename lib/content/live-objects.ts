/**
 * LiveObjects: the segments a LiveSource keeps, as objects a stream sends
 * (docs/PROTOCOL.md §10.14): segment `seq` of live stream NAME is the object
 * with TOI seq + 1 and Content-Location `NAME/seq`, one RFC 6330 object of
 * its own (its own OTI and SHA-256), read from the segment's file like a
 * catalogue file. The FDT instance of a live channel lists the kept
 * segments, oldest first, with Complete="false" while the input runs and
 * Complete="true" once it has ended (RFC 6726 §3.4.2: no more Files will
 * be added).
 *
 * Objects are created as segments are announced and closed (their encoder,
 * i.e. their file descriptor) when the segment is dropped.
 */
import { ObjectEncoder } from '../fec/encoder';
import type { RawCodecBinding } from '../native';
import type { FdtChannel } from '../protocol/fdt-schema';
import { buildFdtObject, DEFAULT_FDT_LIFETIME_MS, encoderOptionsFor, type CatalogueObject, type FdtObject } from './catalogue';
import type { LiveSegment } from './live-source';

/** FDT Instance IDs are 20 bits (RFC 6726 §3.4.1). */
const FDT_INSTANCE_MOD = 1 << 20;

/** The object of segment `seq` of live stream `name`. */
export function liveObjectName(name: string, seq: number): string {
  return `${name}/${seq}`;
}

export class LiveObjects {
  private readonly list: CatalogueObject[] = [];
  private instance = 0;

  constructor(
    readonly name: string,
    private readonly symbolSize: number,
    private readonly binding?: RawCodecBinding,
  ) {}

  /** The kept segments' objects, oldest first. */
  get objects(): readonly CatalogueObject[] {
    return this.list;
  }

  /** Segment `s` has been stored: its object (TOI seq + 1), opened from its file. */
  add(s: LiveSegment): CatalogueObject {
    const encoder = ObjectEncoder.fromFile(s.path, { ...encoderOptionsFor(s.length, this.symbolSize), length: s.length }, this.binding);
    const o: CatalogueObject = {
      toi: s.seq + 1,
      name: liveObjectName(this.name, s.seq),
      path: s.path,
      length: s.length,
      sha256: s.sha256,
      oti: encoder.otiInfo,
      encoder,
    };
    this.list.push(o);
    return o;
  }

  /** Segment `seq` was dropped: its object leaves the list; returns it (its encoder is the caller's to close once no stream uses it). */
  remove(seq: number): CatalogueObject | undefined {
    const i = this.list.findIndex((o) => o.toi === seq + 1);
    if (i < 0) return undefined;
    return this.list.splice(i, 1)[0];
  }

  /** The next FDT instance: the kept segments, Complete once the input has ended; the server's channels listed (rq:Channel) when given. Instance IDs count 1, 2, … mod 2^20. */
  fdt(complete: boolean, nowMs: number, channels?: readonly FdtChannel[]): FdtObject {
    this.instance = (this.instance % (FDT_INSTANCE_MOD - 1)) + 1;
    return buildFdtObject(this.list, {
      instanceId: this.instance,
      expiresAtMs: Math.ceil(nowMs + DEFAULT_FDT_LIFETIME_MS),
      complete,
      channels,
      symbolSize: this.symbolSize,
      binding: this.binding,
    });
  }

  /** Closes every object's encoder. */
  close(): void {
    for (const o of this.list.splice(0)) o.encoder.close();
  }
}
