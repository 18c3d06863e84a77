/**
 * Runs inside a namespace made by test/transport/multicast/multicast-netns.ts
 * (never by jest directly): the multicast scenarios of the client, each a
 * fetch against real group sockets, printing one JSON line with what each
 * saw. Usage:
 *
 *   multicast-child.ts client|flute FAMILY
 *
 * client: RqcastClient against the scripted server (fake-server.ts), which
 * announces a group and sends the group stream itself (or not).
 * flute: FluteReceiver against plain group senders (group-sender.ts).
 */
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runFetch } from '../../lib/cli/fetch';
import { RqcastClient, RqcastClientOptions } from '../../lib/client/client';
import { FetchSummary, TransportEvent } from '../../lib/client/events';
import { FluteReceiver } from '../../lib/client/flute-receiver';
import { MessageType } from '../../lib/protocol/messages';
import { Rng } from '../../lib/support/rng';
import { MC_IF, OTHER_V4, OTHER_V6, SOURCE_V4, SOURCE_V6 } from '../transport/multicast/multicast-netns';
import { FakeServer, FakeServerOptions } from './fake-server';
import { GroupSender } from './group-sender';

const [suite, familyText] = process.argv.slice(2);
const v6 = familyText === '6';
const SOURCE = v6 ? SOURCE_V6 : SOURCE_V4;
const OTHER = v6 ? OTHER_V6 : OTHER_V4;
let portSeq = 6000;
const group = (): { group: string; port: number } => ({ group: v6 ? 'ff3e::8000:7' : '232.1.2.7', port: portSeq++ });

function bytes(n: number, seed: number): Buffer {
  const rng = new Rng(seed);
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rng.unit() * 256);
  return b;
}

const A = bytes(100_000, 1);
const B = bytes(30_000, 2);

async function until(cond: () => boolean, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  return cond();
}

function errorOf(e: unknown): { name: string; code?: string; message: string } {
  const err = e as Error & { code?: string };
  return { name: err.name, code: err.code, message: err.message };
}

function pick(s: FetchSummary) {
  return {
    channels: s.channels,
    objects: s.objects.map((o) => o.name),
    packetsReceived: s.packetsReceived,
    multicastPackets: s.multicastPackets,
    multicastForeign: s.multicastForeign,
    symbolsReceived: s.symbolsReceived,
    neededSymbols: s.neededSymbols,
  };
}

async function sameFile(file: string, data: Buffer): Promise<boolean> {
  try {
    return (await fs.readFile(file)).equals(data);
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- client --

async function fetchWith(server: Partial<FakeServerOptions>, client: RqcastClientOptions) {
  const g = group();
  const fake = new FakeServer({
    objects: [{ name: 'a.bin', data: A }],
    groups: { main: { ...g, source: SOURCE } },
    groupSource: SOURCE,
    // The group stream starts once the client has joined the group: every packet of it counts.
    groupsOnCue: true,
    ...server,
  });
  const port = await fake.listen();
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rqcast-mc-'));
  const c = new RqcastClient(`rqcast://127.0.0.1:${port}`, { outputDir: dir, retryMs: 50, timeoutMs: 10_000, ...client });
  const events: (TransportEvent & { afterMs: number })[] = [];
  let first = 0;
  c.on('transport', (e) => {
    first ||= Date.now();
    events.push({ ...e, afterMs: Date.now() - first });
    if (e.reason === 'group-announced') fake.startGroups();
  });
  // --transport udp joins no group: the group streams anyway, as a server's does.
  if (client.transport === 'udp') fake.startGroups();
  let summary: ReturnType<typeof pick> | undefined;
  let error: ReturnType<typeof errorOf> | undefined;
  try {
    summary = pick(await c.fetch());
  } catch (e) {
    error = errorOf(e);
  }
  // LEAVE has gone out before fetch() settled.
  await new Promise((r) => setTimeout(r, 50));
  // The JOIN exchanges, each once: a JOIN repeated after retryMs (no JOINED within 50 ms, on a loaded machine)
  // or to renew is the same request again.
  const joins = fake.received
    .flatMap((m) => (m.type === MessageType.Join ? [m.multicast ?? []] : []))
    .filter((j, i, all) => i === 0 || JSON.stringify(j) !== JSON.stringify(all[i - 1]));
  const result = {
    events,
    joins,
    unicastSent: fake.unicastSent,
    groupSent: fake.groupSent.get(1) ?? 0,
    fileOk: await sameFile(path.join(dir, 'a.bin'), A),
    summary,
    error,
  };
  await fake.close();
  await fs.rm(dir, { recursive: true, force: true });
  return result;
}

/** `rqcast fetch URL ARGS --json` in this process: its exit code and its JSON lines. */
async function cli(url: string, args: Record<string, unknown>): Promise<{ code: number; lines: Record<string, unknown>[] }> {
  let out = '';
  const write = process.stdout.write.bind(process.stdout);
  const errWrite = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((chunk: string | Uint8Array) => {
    out += chunk.toString();
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = (() => true) as typeof process.stderr.write;
  let code: number;
  try {
    code = await runFetch(url, { timeout: 10_000, json: true, ...args });
  } finally {
    process.stdout.write = write;
    process.stderr.write = errWrite;
  }
  return { code, lines: out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

/** The CLI against a server whose group stays silent: --fallback-after 300ms, --json. */
async function cliFallback() {
  const g = group();
  const fake = new FakeServer({ objects: [{ name: 'a.bin', data: A }], groups: { main: { ...g, source: SOURCE } }, groupSilent: true });
  const port = await fake.listen();
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rqcast-mc-cli-'));
  const r = await cli(`rqcast://127.0.0.1:${port}`, { output: dir, fallbackAfter: 300, transport: 'auto', multicastIf: MC_IF });
  const fileOk = await sameFile(path.join(dir, 'a.bin'), A);
  await fake.close();
  await fs.rm(dir, { recursive: true, force: true });
  return { ...r, fileOk };
}

async function clientSuite(): Promise<Record<string, unknown>> {
  return {
    // The group delivers: the whole object over multicast, nothing by unicast.
    deliver: await fetchWith({}, {}),
    // The group is announced and stays silent: unicast after fallbackAfterMs.
    silent: await fetchWith({ groupSilent: true }, { fallbackAfterMs: 500 }),
    // The group stops after 240 packets (about half the object: K = 391);
    // unicast then sends at most 340, too few to decode from alone: the
    // object decodes only from both together.
    stops: await fetchWith({ groupPackets: 240, unicastPackets: 340 }, { fallbackAfterMs: 500 }),
    // The group stream comes from another source than the one announced: the
    // source-specific join never takes it.
    foreignSource: await fetchWith({ groupSource: OTHER }, { fallbackAfterMs: 500 }),
    // --transport multicast: never falls back; the fetch times out.
    multicastOnly: await fetchWith({ groupSilent: true }, { transport: 'multicast', fallbackAfterMs: 300, timeoutMs: 1500 }),
    // --transport udp: no bit set, no group joined, though the group streams.
    udpOnly: await fetchWith({}, { transport: 'udp' }),
    cli: await cliFallback(),
  };
}

// ----------------------------------------------------------------- flute --

interface FluteRun {
  receiver: FluteReceiver;
  dir: string;
  g: { group: string; port: number };
}

async function flute(query: string, o: { name?: string; timeoutMs?: number; tsi?: number } = {}): Promise<FluteRun> {
  const g = group();
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rqcast-flute-'));
  const host = v6 ? `[${g.group}]` : g.group;
  const receiver = new FluteReceiver(`flute://${host}:${g.port}${o.name ? `/${o.name}` : ''}?tsi=${o.tsi ?? 7}&if=${MC_IF}${query}`, {
    outputDir: dir,
    timeoutMs: o.timeoutMs ?? 10_000,
  });
  await receiver.start();
  return { receiver, dir, g };
}

async function sender(objects: { name: string; data: Buffer }[], tsi: number, from: string, garbage = false): Promise<GroupSender> {
  const s = new GroupSender({ objects, tsi, garbage });
  await s.bind(from, MC_IF);
  return s;
}

/** Sends until the receiver settles; its summary, or its error. */
async function sendUntilDone(run: FluteRun, s: GroupSender) {
  let settled = false;
  const outcome = run.receiver.done.then(
    (summary) => ({ summary: pick(summary) }),
    (e: unknown) => ({ error: errorOf(e) }),
  );
  void outcome.then(() => (settled = true));
  while (!settled) await s.send(run.g.group, run.g.port, 32);
  return outcome;
}

async function fluteSuite(): Promise<Record<string, unknown>> {
  const both = [
    { name: 'a.bin', data: A },
    { name: 'dir/b.bin', data: B },
  ];
  const out: Record<string, unknown> = {};

  {
    // Source-specific: another host's packets of the same TSI, TOIs and ESIs,
    // with wrong bytes, go out first; were any taken, an object would fail.
    const run = await flute(`&source=${encodeURIComponent(SOURCE)}`);
    const bad = await sender(both, 7, OTHER, true);
    await bad.send(run.g.group, run.g.port, 300);
    const good = await sender(both, 7, SOURCE);
    const r = await sendUntilDone(run, good);
    out.ssm = { ...r, a: await sameFile(path.join(run.dir, 'a.bin'), A), b: await sameFile(path.join(run.dir, 'dir/b.bin'), B), garbageSent: bad.sent };
    bad.close();
    good.close();
  }
  {
    // Any-source: another session's packets (TSI 8) are counted as foreign, one by one.
    const run = await flute('');
    const other = await sender(both, 8, OTHER, true);
    await other.send(run.g.group, run.g.port, 200);
    const counted = await until(() => run.receiver.stats.multicastForeign >= 200);
    const good = await sender(both, 7, SOURCE);
    const r = await sendUntilDone(run, good);
    out.asm = { ...r, counted, foreignSent: other.sent, a: await sameFile(path.join(run.dir, 'a.bin'), A) };
    other.close();
    good.close();
  }
  {
    // Leave and join again 3 times in the middle of the transfer.
    const run = await flute(`&source=${encodeURIComponent(SOURCE)}`, { name: 'a.bin' });
    const s = await sender([{ name: 'a.bin', data: A }], 7, SOURCE);
    const periods: number[] = [];
    const whileLeft: number[] = [];
    // Symbols the decoder holds: after each period, and across each leave and join.
    const held = (): number => run.receiver.progress().heldSymbols;
    const heldAfterPeriod: number[] = [];
    const heldAcrossRejoin: number[] = [];
    for (let i = 0; i < 3; i++) {
      const before = run.receiver.groupPackets;
      await s.send(run.g.group, run.g.port, 96);
      await until(() => run.receiver.groupPackets >= before + 96);
      periods.push(run.receiver.groupPackets - before);
      heldAfterPeriod.push(held());
      run.receiver.leaveGroup();
      const packets = run.receiver.groupPackets;
      await s.send(run.g.group, run.g.port, 64);
      // Sent while not a member: the kernel never looped them to this host.
      whileLeft.push(run.receiver.groupPackets - packets);
      run.receiver.joinGroup();
      heldAcrossRejoin.push(held());
    }
    const before = run.receiver.groupPackets;
    const r = await sendUntilDone(run, s);
    periods.push(run.receiver.groupPackets - before);
    out.rejoin = {
      ...r,
      periods,
      whileLeft,
      heldAfterPeriod,
      heldAcrossRejoin,
      memberships: run.receiver.memberships,
      a: await sameFile(path.join(run.dir, 'a.bin'), A),
      bWritten: await sameFile(path.join(run.dir, 'dir/b.bin'), B),
    };
    s.close();
  }
  {
    // A name the FDT does not list.
    const run = await flute('', { name: 'nope.bin' });
    const s = await sender(both, 7, SOURCE);
    out.missing = await sendUntilDone(run, s);
    s.close();
  }
  {
    // `rqcast fetch flute://... --json` while the group streams.
    const g = group();
    const host = v6 ? `[${g.group}]` : g.group;
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rqcast-flute-cli-'));
    const s = await sender(both, 7, SOURCE);
    let done = false;
    const fetching = cli(`flute://${host}:${g.port}?tsi=7&source=${encodeURIComponent(SOURCE)}`, { output: dir, multicastIf: MC_IF, transport: 'auto' }).finally(() => {
      done = true;
    });
    while (!done) await s.send(g.group, g.port, 32);
    out.cli = { ...(await fetching), a: await sameFile(path.join(dir, 'a.bin'), A), b: await sameFile(path.join(dir, 'dir/b.bin'), B) };
    s.close();
  }
  {
    // Nothing on the group.
    const run = await flute('', { timeoutMs: 800 });
    out.silent = await run.receiver.done.then(
      () => ({}),
      (e: unknown) => ({ error: errorOf(e) }),
    );
  }
  return out;
}

(suite === 'client' ? clientSuite() : fluteSuite()).then(
  (r) => {
    process.stdout.write(JSON.stringify(r) + '\n');
    process.exit(0);
  },
  (e: unknown) => {
    process.stdout.write(JSON.stringify({ crashed: errorOf(e), stack: (e as Error).stack }) + '\n');
    process.exit(1);
  },
);
