/**
 * ForwardRelay: `rqcast relay --mode forward` (docs/PROTOCOL.md §10.13).
 * The upstream session decodes nothing (RqcastClient with a PacketTap,
 * lib/client/packet-tap.ts): each upstream FDT instance and each object
 * data packet goes straight to the ForwardStream of its channel
 * (forward-stream.ts), which sends the same symbols (same SBN, ESI and
 * bytes) under this relay's headers to its own clients, through an
 * RqcastServer of its own (the same control plane as any server: cookies,
 * join timers, channels). Files and live channels alike; the upstream may
 * be an origin or another relay (forward or regenerate).
 *
 * - Start: the server opens once every channel of the upstream URL has
 *   given a first FDT instance listing an object (its T sizes the slots).
 * - Objects: those the upstream FDTs list (only the URL's NAME if it gives
 *   one), under the same names, digests and OTIs, with the relay's TOIs.
 * - Upstream losses: the session waits through silence (a day, as in
 *   regenerate mode) and renews its JOIN; a fetch that fails all the same
 *   is started again after retryAfterMs, for ever. Meanwhile the relay's
 *   clients keep their sessions and get nothing (a forward relay holds no
 *   symbol of its own); packets flow again as soon as upstream does.
 * - Its symbols are the upstream's: a client combining a forward relay with
 *   its upstream (or with another forward relay of it) receives the same
 *   (SBN, ESI) twice; it counts them as duplicates and decodes all the
 *   same. `--server-index/--servers` do not apply (refused).
 */
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { RqcastClient, type RqcastClientOptions } from '../client/client';
import type { PacketTap } from '../client/packet-tap';
import type { RqcastUrl } from '../client/url';
import { parseRqcastUrl } from '../client/url';
import { Catalogue } from '../content/catalogue';
import { decodeContentLocation } from '../protocol/content-location';
import type { FdtFile, FdtInstance } from '../protocol/fdt';
import { SILENT_LOGGER } from '../server/config';
import { LIVE_RING_CAPACITY } from '../server/live-channel';
import { type RqcastServerOptions, RqcastServer, type ServerAddress, type ServerLogger } from '../server/server';
import { ForwardStream, type ForwardCounters } from './forward-stream';
import { DEFAULT_RETRY_AFTER_MS, DEFAULT_UPSTREAM_TIMEOUT_MS } from './relay';

/** Ring slots of a forward channel, a live channel's: packets are pushed as they arrive, so a short ring bounds the delay a burst adds. */
export const FORWARD_RING_CAPACITY = LIVE_RING_CAPACITY;
/** The default channel's name, as a URL without channels means it. */
const DEFAULT_CHANNEL = 'main';

export interface ForwardRelayOptions {
  upstream: string | RqcastUrl;
  /** The relay's own server (port, address, rate, secret…); no group place: the symbols are the upstream's. */
  server?: Omit<RqcastServerOptions, 'catalogue' | 'channels' | 'serverGroup'>;
  client?: Omit<RqcastClientOptions, 'outputDir' | 'outputFile' | 'timeoutMs' | 'tap'>;
  upstreamTimeoutMs?: number;
  retryAfterMs?: number;
  logger?: ServerLogger;
}

interface UpstreamChannel {
  name: string;
  /** Its TSI in the current upstream session. */
  tsi: number;
  files: { name: string; file: FdtFile }[];
  complete: boolean | undefined;
  expiresAtMs: number;
}

export declare interface ForwardRelay {
  on(event: 'listening', listener: (address: ServerAddress) => void): this;
  on(event: 'upstream-failed', listener: (err: Error) => void): this;
  on(event: 'warning', listener: (message: string) => void): this;
}

export class ForwardRelay extends EventEmitter {
  readonly mode = 'forward' as const;
  private readonly url: RqcastUrl;
  private readonly log: ServerLogger;
  private client?: RqcastClient;
  private server?: RqcastServer;
  private catalogue?: Catalogue;
  /** Upstream channels by name, as their last FDT instance described them. */
  private readonly upstream = new Map<string, UpstreamChannel>();
  /** Upstream TSI (current session) -> channel name. */
  private readonly byTsi = new Map<number, string>();
  private readonly streams = new Map<string, ForwardStream>();
  private closed = false;
  private emptyDir?: string;
  private retryTimer?: NodeJS.Timeout;
  private wake?: () => void;
  private ready?: () => void;
  /** Upstream fetch attempts started. */
  attempts = 0;

  constructor(private readonly o: ForwardRelayOptions) {
    super();
    this.url = typeof o.upstream === 'string' ? parseRqcastUrl(o.upstream) : o.upstream;
    this.log = o.logger ?? SILENT_LOGGER;
  }

  /** Joins upstream; resolves once the relay's server listens (every channel has had an FDT instance listing an object). */
  async start(): Promise<ServerAddress> {
    const first = new Promise<void>((resolve) => (this.ready = resolve));
    const running = this.runUpstream();
    running.catch(() => undefined);
    await Promise.race([first, running]);
    if (this.closed) throw new Error('relay closed');
    const channels = this.channelNames().map((n) => this.upstream.get(n) as UpstreamChannel);
    const T = channels.flatMap((c) => c.files).map((f) => (f.file.oti as NonNullable<FdtFile['oti']>).symbolSize)[0];
    // A forward relay keeps no file: its server's catalogue is empty (loaded from an empty directory of its own).
    this.emptyDir = mkdtempSync(path.join(tmpdir(), 'rqcast-forward-'));
    this.catalogue = await Catalogue.load([this.emptyDir], { symbolSize: T });
    this.server = new RqcastServer({
      ...(this.o.server ?? {}),
      logger: this.o.server?.logger ?? this.log,
      catalogue: this.catalogue,
      channels: channels.map((c) => ({
        name: c.name,
        ringCapacity: FORWARD_RING_CAPACITY,
        stream: (ctx) => {
          const s = new ForwardStream({ tsi: ctx.tsi, symbolSize: T, channels: ctx.channels, refill: ctx.refill });
          s.announce(c.files, c.complete, c.expiresAtMs);
          this.streams.set(c.name, s);
          return s;
        },
      })),
    });
    this.server.on('error', (err) => this.log.error({ err }, 'relay server error'));
    const address = await this.server.listen();
    if (this.closed) {
      await this.server.close();
      throw new Error('relay closed');
    }
    this.log.info({ ...address, channels: channels.map((c) => c.name), mode: 'forward' }, 'relay serving');
    this.emit('listening', address);
    return address;
  }

  get downstream(): RqcastServer | undefined {
    return this.server;
  }

  /** What each channel's forward stream counted, by channel name. */
  forwardCounters(): Record<string, ForwardCounters> {
    const out: Record<string, ForwardCounters> = {};
    for (const [name, s] of this.streams) out[name] = { ...s.forward };
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.wake?.();
    this.ready?.();
    this.client?.close();
    await this.server?.shutdown();
    this.catalogue?.close();
    if (this.emptyDir) rmSync(this.emptyDir, { recursive: true, force: true });
  }

  /** The channel names the upstream URL asks for, in its order. */
  private channelNames(): string[] {
    return this.url.channels.length > 0 ? this.url.channels : [DEFAULT_CHANNEL];
  }

  /** One upstream session after another, for ever (until close). */
  private async runUpstream(): Promise<void> {
    for (;;) {
      if (this.closed) return;
      this.attempts++;
      this.byTsi.clear();
      const client = new RqcastClient(this.url, {
        ...(this.o.client ?? {}),
        timeoutMs: this.o.upstreamTimeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS,
        tap: this.tap,
      });
      this.client = client;
      client.on('warning', (m) => this.emit('warning', m));
      try {
        await client.fetch();
      } catch (e) {
        if (this.closed) return;
        const err = e instanceof Error ? e : new Error(String(e));
        this.emit('upstream-failed', err);
      }
      if (this.closed) return;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        this.retryTimer = setTimeout(resolve, this.o.retryAfterMs ?? DEFAULT_RETRY_AFTER_MS);
      });
    }
  }

  private readonly tap: PacketTap = {
    fdt: (_source: number, channel: string, tsi: number, _instanceId: number, instance: FdtInstance) => {
      this.byTsi.set(tsi, channel);
      const files: { name: string; file: FdtFile }[] = [];
      for (const file of instance.files) {
        let name: string;
        try {
          name = decodeContentLocation(file.contentLocation);
        } catch {
          continue;
        }
        if (this.url.name !== undefined && name !== this.url.name) continue;
        // Only what a client can fetch and verify is passed on (§10.12: objects are matched by name, digest and OTI).
        if (file.oti === undefined || file.sha256 === undefined || file.toi < 1n || file.toi > BigInt(Number.MAX_SAFE_INTEGER)) continue;
        files.push({ name, file });
      }
      const ch: UpstreamChannel = { name: channel, tsi, files, complete: instance.complete, expiresAtMs: instance.expiresAtMs };
      this.upstream.set(channel, ch);
      const stream = this.streams.get(channel);
      if (stream) stream.announce(files, instance.complete, instance.expiresAtMs);
      else if (this.channelNames().every((n) => (this.upstream.get(n)?.files.length ?? 0) > 0)) this.ready?.();
    },
    packet: (_source: number, tsi: number, toi: number, sbn: number, esi: number, symbols: Uint8Array) => {
      const channel = this.byTsi.get(tsi);
      if (channel !== undefined) this.streams.get(channel)?.packet(toi, sbn, esi, symbols);
    },
  };
}
