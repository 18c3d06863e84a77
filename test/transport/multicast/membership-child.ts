/**
 * Runs inside a namespace made by multicast-netns.ts (never by jest
 * directly): one scenario of MulticastMembership against real sockets,
 * printing one JSON line with what arrived. Usage:
 *
 *   membership-child.ts SCENARIO FAMILY [RECEIVER]
 *
 * RECEIVER is `native` (the default: the membership is opened without a
 * receiver option) or `dgram` (useDgram); every result says which receiver
 * the membership ended up with.
 *
 * Senders are plain dgram sockets bound to one of mc0's addresses, their
 * packets looped back (IP_MULTICAST_LOOP) to the members on mc0. A send is
 * complete once its callback ran: the kernel has then decided, at once,
 * whether a member of the group on mc0 gets a copy, so "sent while not a
 * member" is exact, not a matter of waiting.
 */
import * as dgram from 'dgram';
import { readFileSync } from 'fs';
import type { Datagrams } from '../../../lib/transport/client-transport';
import {
  MulticastGroupSpec,
  MulticastMembership,
  MulticastMembershipOptions,
  openMulticastMembership as openMembership,
} from '../../../lib/transport/multicast/client-membership';
import { MC_IF, OTHER_V4, OTHER_V6, SOURCE_V4, SOURCE_V6 } from './multicast-netns';

const [scenario, familyText, receiverText = 'native'] = process.argv.slice(2);
const v6 = familyText === '6';
const SOURCE = v6 ? SOURCE_V6 : SOURCE_V4;
const OTHER = v6 ? OTHER_V6 : OTHER_V4;
const SSM_GROUP = v6 ? 'ff3e::8000:1' : '232.1.1.1';
const ASM_GROUP = v6 ? 'ff15::1:2' : '239.1.1.2';
const PORT = 5001;
/** Native is what a membership gets without being told: no option. */
const RECEIVER: MulticastMembershipOptions = receiverText === 'dgram' ? { useDgram: true } : {};

function openMulticastMembership(spec: MulticastGroupSpec, handler: Recorder): Promise<MulticastMembership> {
  return openMembership(spec, handler, RECEIVER);
}

/** Lets what the kernel already queued reach JS (the native receiver's gather window is 8 ms). */
function settle(ms = 300): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** What one membership was handed: payloads and sources, and batches. */
class Recorder {
  readonly payloads: string[] = [];
  readonly sources = new Set<string>();
  batches = 0;
  errors: string[] = [];
  private waiters: (() => void)[] = [];
  onDatagrams(d: Datagrams): void {
    this.batches++;
    for (let i = 0; i < d.count; i++) {
      this.payloads.push(d.datagram(i).toString());
      this.sources.add(d.address(i));
    }
    for (const w of this.waiters.splice(0)) w();
  }
  onError(e: Error): void {
    this.errors.push(e.message);
  }
  /** Payloads tagged `tag` ("tag-i"). */
  count(tag: string): number {
    return this.payloads.filter((p) => p.slice(0, p.lastIndexOf('-')) === tag).length;
  }
  /** Resolves once `n` payloads are in, or after `ms` with what there is. */
  async until(n: number, ms = 5000): Promise<void> {
    const end = Date.now() + ms;
    while (this.payloads.length < n && Date.now() < end) {
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }
}

async function sender(address: string): Promise<dgram.Socket> {
  const s = dgram.createSocket(v6 ? 'udp6' : 'udp4');
  await new Promise<void>((r) => s.bind(0, address, r));
  s.setMulticastInterface(v6 ? `::%${MC_IF}` : SOURCE_V4);
  s.setMulticastLoopback(true);
  return s;
}

/** Sends `count` datagrams "tag-i" to group:PORT; resolves once the kernel has each. */
async function send(s: dgram.Socket, group: string, tag: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    await new Promise<void>((r) => s.send(`${tag}-${i}`, PORT, group, () => r()));
  }
}

function ifIndex(): string {
  return readFileSync(`/sys/class/net/${MC_IF}/ifindex`, 'utf8').trim();
}

async function main(): Promise<unknown> {
  const src = await sender(SOURCE);
  const other = await sender(OTHER);
  try {
    switch (scenario) {
      case 'leave-rejoin': {
        // Source-specific, on the interface named as each family names it best (IPv4 by address, IPv6 by index).
        const rec = new Recorder();
        const m = await openMulticastMembership({ group: SSM_GROUP, port: PORT, source: SOURCE, interface: v6 ? ifIndex() : SOURCE_V4 }, rec);
        await send(other, SSM_GROUP, 'other', 20);
        await send(src, SSM_GROUP, 'one', 20);
        await rec.until(20);
        const first = rec.payloads.length;
        m.leave();
        m.leave();
        const joinedAfterLeave = m.joined;
        await send(src, SSM_GROUP, 'left', 20);
        m.join();
        m.join();
        await send(src, SSM_GROUP, 'two', 20);
        await rec.until(first + 20);
        const kinds = (tag: string) => rec.payloads.filter((p) => p.startsWith(`${tag}-`)).length;
        const out = {
          first,
          other: kinds('other'),
          one: kinds('one'),
          left: kinds('left'),
          two: kinds('two'),
          sources: [...rec.sources],
          joins: m.joins,
          joinedAfterLeave,
          joined: m.joined,
          port: m.localPort(),
          batches: rec.batches,
          errors: rec.errors,
          receiver: m.receiver,
        };
        await m.close();
        await m.close();
        return out;
      }
      case 'any-source': {
        // Any-source, the kernel's choice of interface (IPv4) or by name (IPv6), and a second
        // membership on the same port (SO_REUSEADDR) beside it.
        const a = new Recorder();
        const b = new Recorder();
        const ma = await openMulticastMembership({ group: ASM_GROUP, port: PORT, ...(v6 ? { interface: MC_IF } : {}) }, a);
        const mb = await openMulticastMembership({ group: ASM_GROUP, port: PORT, interface: v6 ? MC_IF : SOURCE_V4 }, b);
        await send(src, ASM_GROUP, 's', 10);
        await send(other, ASM_GROUP, 'o', 10);
        await Promise.all([a.until(20), b.until(20)]);
        await Promise.all([ma.close(), mb.close()]);
        return { a: a.payloads.length, b: b.payloads.length, aSources: [...a.sources].sort(), bSources: [...b.sources].sort(), receiver: ma.receiver };
      }
      case 'link-local': {
        // An IPv6 group of link-local scope: bound with its interface as zone.
        const rec = new Recorder();
        const m: MulticastMembership = await openMulticastMembership({ group: 'ff12::1:3', port: PORT, interface: MC_IF }, rec);
        await send(src, 'ff12::1:3', 'l', 10);
        await rec.until(10);
        const receiver = m.receiver;
        await m.close();
        return { received: rec.payloads.length, sources: [...rec.sources], receiver };
      }
      case 'closed': {
        // Nothing is handed over once close() has resolved.
        const rec = new Recorder();
        const m = await openMulticastMembership({ group: ASM_GROUP, port: PORT, interface: v6 ? MC_IF : SOURCE_V4 }, rec);
        await send(src, ASM_GROUP, 'before', 5);
        await rec.until(5);
        await m.close();
        const before = rec.payloads.length;
        const receiver = m.receiver;
        await send(src, ASM_GROUP, 'after', 5);
        // A membership open elsewhere on the port proves the datagrams were delivered to the host.
        const witness = new Recorder();
        const w = await openMulticastMembership({ group: ASM_GROUP, port: PORT, interface: v6 ? MC_IF : SOURCE_V4 }, witness);
        await send(src, ASM_GROUP, 'witnessed', 5);
        await witness.until(5);
        await w.close();
        return { before, after: rec.payloads.length, witnessed: witness.payloads.length, receiver };
      }
      case 'left-beside-any-source': {
        // Membership `a` leaves while `b`, another socket of this host on the same group and port, stays
        // joined: the group still reaches the host (b proves it), and a must hear none of it.
        const itf = v6 ? MC_IF : SOURCE_V4;
        const a = new Recorder();
        const b = new Recorder();
        const ma = await openMulticastMembership({ group: ASM_GROUP, port: PORT, interface: itf }, a);
        const mb = await openMulticastMembership({ group: ASM_GROUP, port: PORT, interface: itf }, b);
        await send(src, ASM_GROUP, 'one', 10);
        await Promise.all([a.until(10), b.until(10)]);
        ma.leave();
        await send(src, ASM_GROUP, 'left', 10);
        await send(other, ASM_GROUP, 'left-other', 10);
        await b.until(30);
        await settle();
        ma.join();
        await send(src, ASM_GROUP, 'two', 10);
        await Promise.all([a.until(a.payloads.length + 10), b.until(40)]);
        const tags = (r: Recorder) => ({ one: r.count('one'), left: r.count('left'), leftOther: r.count('left-other'), two: r.count('two') });
        const out = { a: tags(a), b: tags(b), receiver: ma.receiver, errors: [...a.errors, ...b.errors] };
        await Promise.all([ma.close(), mb.close()]);
        return out;
      }
      case 'left-beside-source-specific': {
        // Membership `a` takes SOURCE only (RFC 4607) while `b`, another socket of this host on the same
        // group and port, takes every source: the host receives both senders, `a` only its own. Then `a`
        // leaves while `b` stays, and joins again.
        const itf = v6 ? MC_IF : SOURCE_V4;
        const a = new Recorder();
        const b = new Recorder();
        const ma = await openMulticastMembership({ group: SSM_GROUP, port: PORT, source: SOURCE, interface: itf }, a);
        const mb = await openMulticastMembership({ group: SSM_GROUP, port: PORT, interface: itf }, b);
        await send(other, SSM_GROUP, 'o1', 10);
        await send(src, SSM_GROUP, 's1', 10);
        await Promise.all([a.until(10), b.until(20)]);
        await settle();
        const joinedSources = [...a.sources];
        ma.leave();
        await send(other, SSM_GROUP, 'o2', 10);
        await send(src, SSM_GROUP, 's2', 10);
        await b.until(40);
        await settle();
        ma.join();
        await send(other, SSM_GROUP, 'o3', 10);
        await send(src, SSM_GROUP, 's3', 10);
        await b.until(60);
        await settle();
        const tags = (r: Recorder) => Object.fromEntries(['o1', 's1', 'o2', 's2', 'o3', 's3'].map((t) => [t, r.count(t)]));
        const out = { a: tags(a), b: tags(b), joinedSources, receiver: ma.receiver, errors: [...a.errors, ...b.errors] };
        await Promise.all([ma.close(), mb.close()]);
        return out;
      }
      default:
        throw new Error(`unknown scenario ${scenario}`);
    }
  } finally {
    src.close();
    other.close();
  }
}

main().then(
  (r) => {
    process.stdout.write(JSON.stringify(r) + '\n');
    process.exit(0);
  },
  (e: unknown) => {
    process.stdout.write(JSON.stringify({ error: e instanceof Error ? `${e.name}: ${e.message}` : String(e), code: (e as { code?: string }).code }) + '\n');
    process.exit(1);
  },
);
