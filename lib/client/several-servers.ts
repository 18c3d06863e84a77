/**
 * A fetch from several servers (issue 11, docs/PROTOCOL.md §10.12), as
 * RqcastClient wires it: given several URLs (all naming the same object,
 * or none), one session per server, each over UDP unicast (TCP with
 * transport 'tcp'; no multicast and no fallback chain), every link feeding
 * the one registry, where objects are matched by name, digest and OTI:
 * symbols of every server combine. A SymbolTally counts each server's
 * symbols and the duplicates; a ServerWatch drops a server that stops
 * sending for fallbackAfterMs (its channels no longer owe an FDT) or whose
 * session fails, and the fetch carries on with the others; only the last
 * server's failure is the fetch's.
 */
import type { JoinedChannel } from '../protocol/messages';
import { durationText } from '../support/duration-text';
import type { ClientTransport } from '../transport/client-transport';
import { InvalidClientOptionError } from './errors';
import type { ChannelSummary, ServerSummary } from './events';
import type { FetchLinks } from './fetch-links';
import type { RqcastClientOptions } from './options';
import { resolveServer } from './resolve';
import type { ServerLink, ServerLinkHost } from './server-link';
import { ServerWatch } from './server-watch';
import { SymbolTally } from './symbol-tally';
import { formatRqcastUrl, joinChannels, type RqcastUrl } from './url';

/** What SeveralServers needs of the client that runs the fetch (it adds one link per server). */
export interface SeveralServersHost extends FetchLinks {
  makeLinkHost(failed: (e: Error) => void): ServerLinkHost;
  /** Starts the periodic tick (timeout, progress, silent servers). */
  startTicking(): void;
  warning(message: string): void;
}

export class SeveralServers {
  /** Each server's symbols and duplicates. */
  readonly tally = new SymbolTally();
  /** Which servers still send. */
  private readonly watch: ServerWatch;
  /** Each link's URL, the channels it joined, and whether it ever joined. */
  private readonly serverOf = new Map<ServerLink, { url: RqcastUrl; everJoined: boolean; channels: JoinedChannel[] }>();

  constructor(
    private readonly urls: readonly RqcastUrl[],
    private readonly opts: { transport: RqcastClientOptions['transport']; fallbackAfterMs: number },
    private readonly host: SeveralServersHost,
  ) {
    this.watch = new ServerWatch(opts.fallbackAfterMs);
  }

  /**
   * One session per server, each over UDP unicast (or TCP with transport
   * 'tcp'). A server whose name does not resolve is dropped with a
   * warning, unless none does.
   */
  async start(): Promise<void> {
    const tcp = this.opts.transport === 'tcp';
    const watch = this.watch;
    const resolved = await Promise.allSettled(this.urls.map((u) => resolveServer(u.host, u.port)));
    if (this.host.ended) return;
    const failures = resolved.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failures.length === resolved.length) throw failures[0].reason;
    this.host.startTicking();
    for (let i = 0; i < this.urls.length; i++) {
      const r = resolved[i];
      const url = this.urls[i];
      if (r.status === 'rejected') {
        this.host.warning(`${formatRqcastUrl(url)}: ${r.reason instanceof Error ? r.reason.message : String(r.reason)}; carrying on with the other servers`);
        continue;
      }
      const holder: { link?: ServerLink } = {};
      const link = this.host.newLink(r.value, joinChannels(url), [], this.host.makeLinkHost((e) => this.failed(holder.link as ServerLink, e)), tcp);
      holder.link = link;
      this.host.links.push(link);
      this.serverOf.set(link, { url, everJoined: false, channels: [] });
      watch.add(link.id);
    }
    await Promise.all(
      this.host.links.map(async (link) => {
        let transport: ClientTransport;
        try {
          transport = await this.host.openTransport(link.server, link);
        } catch (e) {
          this.failed(link, e instanceof Error ? e : new Error(String(e)));
          return;
        }
        if (this.host.ended || watch.dropped(link.id)) {
          await transport.close();
          return;
        }
        link.start(transport);
      }),
    );
  }

  /** `link`'s session joined `channels`; its silence is watched from now on. */
  joined(link: ServerLink, channels: JoinedChannel[]): void {
    const s = this.serverOf.get(link);
    if (!s || s.everJoined) return;
    s.everJoined = true;
    s.channels = channels;
    this.watch.joined(link.id, Date.now());
  }

  /** `link`'s session failed (or its server left). Dropped, and the fetch goes on, unless it was the last server left. */
  failed(link: ServerLink, e: Error, reason: 'failed' | 'left' = 'failed'): void {
    if (this.host.ended) return;
    if (!this.watch.failed(link.id, reason)) {
      this.host.run.fail(e);
      return;
    }
    // A server that left: its notice without the advice to run the fetch again, which goes on.
    this.drop(link, reason === 'left' ? e.message.replace(/;.*$/, '') : e.message);
  }

  /** A delivery of `link` was read: its count of packets, for the watch. */
  delivered(link: ServerLink, now: number): void {
    this.watch.heard(link.id, this.packetsOf(link), now);
  }

  /** Drops the servers silent for fallbackAfterMs. */
  tick(now: number): void {
    for (const id of this.watch.tick(now)) {
      const link = this.host.links.find((l) => l.id === id);
      if (link) this.drop(link, `nothing arrived for ${durationText(this.opts.fallbackAfterMs)}`);
    }
  }

  /** Every wanted object decoded: no server is dropped any more. */
  finish(): void {
    this.watch.finish();
  }

  /** Each server's share, for the summary. */
  summaries(): ServerSummary[] {
    const tally = this.tally;
    const watch = this.watch;
    const out: ServerSummary[] = [];
    for (const link of this.host.links) {
      const s = this.serverOf.get(link);
      if (!s) continue;
      const t = tally.of(link.id);
      const dropped = watch.dropped(link.id);
      out.push({
        url: formatRqcastUrl(s.url),
        transport: this.host.tcpLinks.has(link) ? 'tcp' : 'udp',
        joined: s.everJoined,
        ...(dropped ? { dropped } : {}),
        packets: this.packetsOf(link),
        symbols: t.symbols,
        duplicates: t.duplicates,
      });
    }
    return out;
  }

  /** Every server's joined channels and the transport each is on. */
  channelSummaries(): ChannelSummary[] {
    const out: ChannelSummary[] = [];
    for (const link of this.host.links) {
      const s = this.serverOf.get(link);
      for (const c of s?.channels ?? []) out.push({ name: c.name, tsi: c.tsi, transport: this.host.tcpLinks.has(link) ? 'tcp' : 'udp', server: formatRqcastUrl(s!.url) });
    }
    return out;
  }

  /** Stop using `link` (LEAVE if joined, close); its channels no longer owe an FDT. */
  private drop(link: ServerLink, why: string): void {
    const s = this.serverOf.get(link);
    const label = s ? formatRqcastUrl(s.url) : `server ${link.id}`;
    this.host.warning(`${label}: ${why}; carrying on with the other servers`);
    void link.shutdown();
    for (const c of s?.channels ?? []) this.host.run.registry.supersede(link.id, c.tsi);
    this.host.run.channelsChanged();
  }

  /** Data packets `link` has taken so far, over its channels. */
  private packetsOf(link: ServerLink): number {
    let n = 0;
    for (const c of this.serverOf.get(link)?.channels ?? []) n += link.dataPath.unicastPackets(c.tsi);
    return n;
  }
}

/**
 * The rules of a fetch from several servers: every URL names the same
 * object (or none), and the options that speak of one server's transports
 * are refused (InvalidClientOptionError says what to do instead).
 */
export function checkSeveralServers(urls: readonly RqcastUrl[], options: RqcastClientOptions): void {
  const name = urls[0].name;
  if (urls.some((u) => u.name !== name)) {
    throw new InvalidClientOptionError('every URL of a fetch from several servers must name the same object (or none): objects are matched by name');
  }
  if (options.transport === 'multicast') {
    throw new InvalidClientOptionError('a fetch from several servers receives each by unicast: use --transport udp or tcp (or auto, which means udp here)');
  }
  if (options.tcp !== undefined) {
    throw new InvalidClientOptionError("--tcp names one server's TCP transport: with several servers, each URL's host and port is used");
  }
}
