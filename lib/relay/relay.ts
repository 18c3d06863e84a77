/**
 * Relay (issue 11; docs/PROTOCOL.md §10.13): joins an upstream rqcast
 * server's channels like any client and serves the same objects, under the
 * same channel names, to its own clients, with the same control plane
 * (cookies, join timers, channels: an RqcastServer of its own).
 *
 * Regenerate mode: the upstream client (RqcastClient) decodes every
 * object of the channels once, into the spool directory, each verified
 * against the upstream FDT's SHA-256 before it is renamed into place; the
 * relay's server opens once every channel has a complete object and each
 * later one is added as it completes (addObject, a new FDT instance); the
 * server encodes fresh symbols of those files
 * from its own ESI range (its own server group place, lib/content/
 * server-group.ts), with the upstream's symbol size, so that its objects
 * have the upstream's name, digest and OTI and a client can combine the
 * relay with the origin and with other relays (§10.12). A relay can feed
 * another relay: upstream is any rqcast server.
 *
 * Upstream losses: the upstream session waits through silence (its
 * timeout is upstreamTimeoutMs, a day by default) and renews its JOIN as
 * usual; an upstream that comes back (same port) answers the renewal, or
 * the session fetches a new cookie (ERROR bad cookie, §6.2), and the
 * partial objects go on from the symbols already held. A fetch that fails
 * all the same (a refused JOIN, a timeout) is started again after
 * retryAfterMs, for ever, until close(). The relay keeps serving its
 * complete files whatever happens upstream; partial ones finish when it
 * returns.
 *
 * Secrets: the relay is a client upstream (it gets its cookies by HELLO,
 * like any client) and a server downstream, with its own cookie secret
 * (RqcastServerOptions.secret): the two never meet, so they may differ. A
 * relay given the origin's secret issues cookies the origin would accept
 * too, and the reverse.
 *
 * Forward mode (upstream symbols passed on as they arrive, no decoding)
 * is forward-relay.ts. A live channel (an FDT instance with
 * Complete="false", issue 10, docs/PROTOCOL.md §10.14) is not relayed
 * here: the upstream fetch would never be complete. This relay refuses it
 * as soon as an FDT says so (LiveChannelRelayError, not retried), naming
 * the channel; `rqcast relay --mode auto` then relays in forward mode.
 */
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { RqcastClient, type RqcastClientOptions } from '../client/client';
import type { FetchSummary, ProgressInfo } from '../client/events';
import { parseRqcastUrl, type RqcastUrl } from '../client/url';
import { Catalogue } from '../content/catalogue';
import { type RqcastServerOptions, RqcastServer, type ServerAddress, type ServerLogger } from '../server/server';
import { SILENT_LOGGER } from '../server/config';
import { InvalidClientOptionError } from '../client/errors';

/** The upstream URL names a live channel: regenerate mode serves complete objects only (forward mode relays it). Not retried. */
export class LiveChannelRelayError extends InvalidClientOptionError {
  constructor(readonly channels: readonly string[]) {
    super(
      `channel${channels.length > 1 ? 's' : ''} ${channels.map((c) => `"${c}"`).join(', ')} ${channels.length > 1 ? 'are live streams' : 'is a live stream'} ` +
        '(its FDT says Complete="false"): regenerate mode serves complete objects only; ' +
        'relay it with --mode forward (or auto, the default), or leave live channels out of the upstream URL (rqcast://HOST:PORT/CHANNEL,...)',
    );
  }
}

/** How often the upstream fetch is checked for a live channel. */
const LIVE_CHECK_MS = 100;

/** A day: an upstream may be away that long before the upstream fetch gives up and starts again. */
export const DEFAULT_UPSTREAM_TIMEOUT_MS = 24 * 3600 * 1000;
/** After an upstream fetch failed, the next attempt starts this much later. */
export const DEFAULT_RETRY_AFTER_MS = 2000;

export type RelayMode = 'regenerate' | 'forward';

export interface RelayOptions {
  /** The upstream server and the channels to relay (its NAME, if any, limits the relay to that object). */
  upstream: string | RqcastUrl;
  /** Where decoded objects are written (under their names) and served from. */
  spoolDir: string;
  /** The relay's own server: port, address, rate, group place, secret… (its catalogue and channels come from upstream). */
  server?: Omit<RqcastServerOptions, 'catalogue' | 'channels'>;
  /** Options of the upstream session (transport, ACK mode, memory…). */
  client?: Omit<RqcastClientOptions, 'outputDir' | 'outputFile' | 'timeoutMs'>;
  /** Default DEFAULT_UPSTREAM_TIMEOUT_MS. */
  upstreamTimeoutMs?: number;
  /** Default DEFAULT_RETRY_AFTER_MS. */
  retryAfterMs?: number;
  logger?: ServerLogger;
}

export declare interface Relay {
  on(event: 'upstream-object', listener: (o: { name: string; bytes: number; sha256: string }) => void): this;
  on(event: 'upstream-failed', listener: (err: Error) => void): this;
  on(event: 'upstream-progress', listener: (p: ProgressInfo) => void): this;
  on(event: 'upstream-done', listener: (s: FetchSummary) => void): this;
  on(event: 'listening', listener: (address: ServerAddress) => void): this;
  on(event: 'warning', listener: (message: string) => void): this;
}

export class Relay extends EventEmitter {
  readonly mode: RelayMode = 'regenerate';
  private readonly log: ServerLogger;
  private client?: RqcastClient;
  private server?: RqcastServer;
  private catalogue?: Catalogue;
  private closed = false;
  private retryTimer?: NodeJS.Timeout;
  private wake?: () => void;
  /** Upstream fetch attempts started (the first one included). */
  attempts = 0;
  /** Upstream objects complete in the spool: name -> file. */
  private readonly complete = new Map<string, string>();
  /** Serving completed objects, one after the other. */
  private serving: Promise<void> = Promise.resolve();
  private opened?: (address: ServerAddress) => void;
  /** The directory an empty catalogue is loaded from (progressive serving), removed on close. */
  private emptyDir?: string;

  constructor(private readonly o: RelayOptions) {
    super();
    this.log = o.logger ?? SILENT_LOGGER;
  }

  /**
   * Fetches the objects of the upstream channels (retrying as long as it
   * takes) and serves them: the server opens as soon as every channel has a
   * complete object, and each object completed later is added to its
   * channels (a new FDT instance, docs/PROTOCOL.md §10.2). Resolves once
   * listening.
   */
  async start(): Promise<ServerAddress> {
    const opened = new Promise<ServerAddress>((resolve) => (this.opened = resolve));
    const fetching = this.fetchUpstream().then(async (fetched) => {
      await this.serving;
      if (this.server || this.closed) return;
      await this.serveAll(fetched);
    });
    fetching.catch((err: unknown) => {
      if (!this.closed && this.server) this.log.error({ err }, 'relay upstream ended');
    });
    // The first of: the server opened, or the upstream fetch failed for good (a live channel, close()).
    const address = await Promise.race([opened, fetching.then(() => (this.closed || !this.server ? Promise.reject(new Error('relay closed')) : opened))]);
    if (this.closed) throw new Error('relay closed');
    return address;
  }

  /** An upstream object is complete in the spool: serve it (opening the server once every channel has one). Serialised. */
  private completed(client: RqcastClient, name: string, file: string): void {
    this.serving = this.serving
      .then(async () => {
        if (this.closed || client !== this.client) return;
        this.complete.set(name, file);
        if (this.server && this.catalogue) {
          const served = new Set(this.server.channels.map((c) => c.name));
          const channels = client
            .channelContents()
            .filter((c) => served.has(c.name) && c.objects.includes(name))
            .map((c) => c.name);
          if (channels.length === 0 || this.catalogue.get(name)) return;
          const obj = await this.catalogue.addFile(file, name);
          this.server.addObject(obj, channels);
          return;
        }
        const contents = client.channelContents().filter((c) => c.objects.length > 0);
        const wanted = Math.max(1, this.upstreamChannels());
        if (contents.length < wanted || !contents.every((c) => c.objects.some((n) => this.complete.has(n)))) return;
        await this.open(contents.map((c) => ({ name: c.name, objects: c.objects.filter((n) => this.complete.has(n)) })), this.symbolSizeOf(contents));
      })
      .catch((err: unknown) => this.log.error({ err, object: name }, 'relay could not serve an upstream object'));
  }

  /** The upstream fetch is complete and the server is not open yet: serve what it fetched (the spool's files). */
  private async serveAll(fetched: { summary: FetchSummary; channels: { name: string; objects: string[] }[] }): Promise<void> {
    // A channel none of whose objects were wanted (the upstream URL names one object it does not carry) has nothing to serve.
    const channels = fetched.channels.filter((c) => c.objects.length > 0);
    for (const c of fetched.channels) if (c.objects.length === 0) this.emit('warning', `channel ${c.name} has no object to relay: not served`);
    const symbolSize = fetched.summary.objects.length > 0 ? this.symbolSizeOf(channels) : undefined;
    await this.open(channels, symbolSize, [this.o.spoolDir]);
  }

  /** Makes the relay's server over `channels` and opens it. Without `paths`, an empty catalogue given the completed objects. */
  private async open(channels: { name: string; objects: string[] }[], symbolSize: number | undefined, paths?: string[]): Promise<void> {
    const options = symbolSize === undefined ? {} : { symbolSize };
    if (paths) this.catalogue = await Catalogue.load(paths, options);
    else {
      this.emptyDir = mkdtempSync(path.join(tmpdir(), 'rqcast-relay-catalogue-'));
      const catalogue = (this.catalogue = await Catalogue.load([this.emptyDir], options));
      for (const name of new Set(channels.flatMap((c) => c.objects))) await catalogue.addFile(this.complete.get(name) as string, name);
    }
    this.server = new RqcastServer({
      ...(this.o.server ?? {}),
      logger: this.o.server?.logger ?? this.log,
      catalogue: this.catalogue,
      channels: channels.map((c) => ({ name: c.name, objects: c.objects })),
    });
    this.server.on('error', (err) => this.log.error({ err }, 'relay server error'));
    const address = await this.server.listen();
    if (this.closed) {
      await this.server.close();
      return;
    }
    this.log.info({ ...address, channels: channels.map((c) => c.name), objects: channels.flatMap((c) => c.objects) }, 'relay serving');
    this.emit('listening', address);
    this.opened?.(address);
  }

  /** Channels the upstream URL names (0: the default one). */
  private upstreamChannels(): number {
    const u = typeof this.o.upstream === 'string' ? parseRqcastUrl(this.o.upstream) : this.o.upstream;
    return u.channels.length;
  }

  /** The relay's server, once serving. */
  get downstream(): RqcastServer | undefined {
    return this.server;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.wake?.();
    this.client?.close();
    // Its own clients are told it is leaving (ERROR 20, docs/PROTOCOL.md §6.7), as serve's are.
    await this.server?.shutdown();
    this.catalogue?.close();
    if (this.emptyDir) rmSync(this.emptyDir, { recursive: true, force: true });
  }

  /** One upstream fetch after another until one completes (or the relay is closed). */
  private async fetchUpstream(): Promise<{ summary: FetchSummary; channels: { name: string; objects: string[] }[] }> {
    for (;;) {
      if (this.closed) throw new Error('relay closed');
      this.attempts++;
      const client = new RqcastClient(this.o.upstream, {
        ...(this.o.client ?? {}),
        outputDir: this.o.spoolDir,
        timeoutMs: this.o.upstreamTimeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS,
      });
      this.client = client;
      client.on('object', (r) => {
        this.emit('upstream-object', { name: r.name, bytes: r.bytes, sha256: r.sha256 });
        this.completed(client, r.name, r.path);
      });
      client.on('warning', (m) => this.emit('warning', m));
      client.on('progress', (p) => this.emit('upstream-progress', p));
      // A live channel's FDT stays open: refuse it at once rather than wait for ever (or relay a snapshot of its segments).
      let live: string[] = [];
      const liveCheck = setInterval(() => {
        if (live.length > 0) return;
        live = client.openChannels();
        if (live.length > 0) client.close();
      }, LIVE_CHECK_MS);
      liveCheck.unref?.();
      try {
        const summary = await client.fetch();
        live = client.openChannels();
        if (live.length > 0) throw new LiveChannelRelayError(live);
        this.emit('upstream-done', summary);
        return { summary, channels: client.channelContents() };
      } catch (e) {
        const err = e instanceof Error ? e : new Error(String(e));
        if (this.closed || err instanceof LiveChannelRelayError) throw err;
        if (live.length > 0) throw new LiveChannelRelayError(live);
        this.emit('upstream-failed', err);
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          this.retryTimer = setTimeout(resolve, this.o.retryAfterMs ?? DEFAULT_RETRY_AFTER_MS);
        });
      } finally {
        clearInterval(liveCheck);
      }
    }
  }

  /** The upstream objects' symbol size (every rqcast server uses one T for all its objects). */
  private symbolSizeOf(channels: { name: string; objects: string[] }[]): number | undefined {
    const client = this.client as RqcastClient;
    for (const c of channels) {
      for (const name of c.objects) {
        const T = client.symbolSizeOf(name);
        if (T !== undefined) return T;
      }
    }
    return undefined;
  }
}
