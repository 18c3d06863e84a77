// (f) Anti-amplification (DESIGN.md: "Before a cookie is verified the server
// sends an address no more bytes than it received from it"), checked from
// outside the server with the kernel's own counters.
//
// An attacker namespace sends, through a raw socket (spoof.py), HELLOs
// (padded and short), garbage, control-looking garbage, JOINs/ACKs/LEAVEs
// with made-up cookies, and JOINs carrying a *real* cookie that the attacker
// obtained for its own address — all of it once with its own source address
// and once forging a victim namespace's address. Neither ever completes a
// cookie exchange of its own (the victim has no socket at all). nftables
// counters (IP bytes) on the attacker's output hook and on each receiving
// side's input hook then show: the victim received at most as many bytes as
// were sent in its name, the attacker at most as many as it sent, neither
// got a single data packet, and the server did answer (so the bound is not
// met by silence). A legitimate client then still fetches its file.
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { encodeControl, MessageType } from '../../lib/protocol';
import { probeNetns, Testbed } from '../support/netns';
import { Rng } from '../../lib/support/rng';
import { cliOptions, describeRun, rqcastArgv, sha256, sleep, startServer, stopProcess, tempDir, transpiledRoot, writeContent } from './helpers';

const probe = probeNetns();
if (!probe.ok) console.warn(`skipping anti-amplification e2e test: ${probe.reason}`);
const describeNetns = probe.ok ? describe : describe.skip;

const PORT = 4433;
const NODE = process.execPath;

// Gets a real cookie for the attacker's own address and port 40001 (one
// HELLO/COOKIE exchange, which is within the bound too), prints it base64.
const GET_COOKIE = `
const { encodeControl, decodeControl, MessageType } = require(process.argv[3]);
const s = require('dgram').createSocket('udp4');
s.on('message', (m) => {
  const d = decodeControl(m);
  if (d.ok && d.msg.type === MessageType.Cookie) { console.log(Buffer.from(d.msg.cookie).toString('base64')); process.exit(0); }
});
s.bind(40001, () => {
  const hello = encodeControl({ type: MessageType.Hello, nonce: require('crypto').randomBytes(8) });
  const send = () => s.send(hello, Number(process.argv[2]), process.argv[1]);
  send(); setInterval(send, 500);
});
`;

interface Forged {
  src: string;
  sport: number;
  data: string;
  repeat: number;
}

function attackPackets(src: string, ownAddress: boolean, realCookie: Uint8Array, rng: Rng): Forged[] {
  const out: Forged[] = [];
  const add = (bytes: Uint8Array, repeat = 1, sport = 40001): void => {
    out.push({ src, sport, data: Buffer.from(bytes).toString('base64'), repeat });
  };
  const until = { kind: 'duration' as const, ms: 60_000 };
  // Well-formed HELLOs: answered with a COOKIE no longer than they are.
  add(encodeControl({ type: MessageType.Hello, nonce: randomBytes(8) }), 40);
  // A HELLO cut short of its padding (the server must not answer with more).
  add(encodeControl({ type: MessageType.Hello, nonce: randomBytes(8) }).subarray(0, 16), 40);
  // Garbage, some of it starting like a control message.
  for (let i = 0; i < 60; i++) {
    const g = rng.bytes(1 + rng.below(1200));
    if (i % 2 === 0 && g.length >= 2) {
      g[0] = 0x52;
      g[1] = 0x51;
    }
    add(g);
  }
  // JOIN / ACK / LEAVE with made-up cookies.
  for (let i = 0; i < 20; i++) {
    const cookie = rng.bytes(16 + rng.below(49));
    add(encodeControl({ type: MessageType.Join, cookie, channels: ['main'], until, ack: i % 2 === 0 }));
    add(encodeControl({ type: MessageType.Leave, cookie }));
    add(encodeControl({ type: MessageType.Ack, cookie, tsi: 1, windowStart: 0, windowEnd: 100, received: [] }));
  }
  // The attacker's real cookie (bound to attacker:40001), replayed from
  // another port, and — forged — from the victim's address. (From
  // attacker:40001 itself it would be a verified JOIN, which this attacker
  // never sends.)
  add(encodeControl({ type: MessageType.Join, cookie: realCookie, channels: ['main'], until, ack: false }), 20, 40002);
  if (!ownAddress) add(encodeControl({ type: MessageType.Join, cookie: realCookie, channels: ['main'], until, ack: true }), 20, 40001);
  return out;
}

describeNetns('(f) anti-amplification against forged and unverified senders', () => {
  let bed: Testbed;
  let dir: string;
  let digest: string;

  beforeAll(async () => {
    dir = tempDir('amp');
    digest = writeContent(path.join(dir, 'F.bin'), 400_000, 21);
    bed = await Testbed.create({ clients: 3 });
  });

  afterAll(() => {
    bed?.destroy();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('sends an unverified address no more bytes than it received, and no data', async () => {
    const [attacker, victim, honest] = bed.clients;
    const server = await startServer(bed, bed.server.ns, [path.join(dir, 'F.bin'), '--bind', bed.server.address, '--port', String(PORT), '--rate', '20']);
    try {
      const s = bed.server.address;
      await bed.addCounter(attacker.ns, 'sent_own', 'output', `ip saddr ${attacker.address} ip daddr ${s} meta l4proto udp`);
      await bed.addCounter(attacker.ns, 'sent_forged', 'output', `ip saddr ${victim.address} ip daddr ${s} meta l4proto udp`);
      await bed.addCounter(attacker.ns, 'recv', 'input', `ip saddr ${s} meta l4proto udp`);
      await bed.addCounter(attacker.ns, 'recv_data', 'input', `ip saddr ${s} udp sport != ${PORT}`);
      await bed.addCounter(victim.ns, 'recv', 'input', `ip saddr ${s} meta l4proto udp`);
      await bed.addCounter(victim.ns, 'recv_data', 'input', `ip saddr ${s} udp sport != ${PORT}`);

      const cookieRun = await bed.runOk(attacker.ns, [NODE, '-e', GET_COOKIE, s, String(PORT), path.join(transpiledRoot(), 'dist', 'protocol')], cliOptions({ timeoutMs: 60_000 }));
      const realCookie = new Uint8Array(Buffer.from(cookieRun.stdout.trim(), 'base64'));
      expect(realCookie.length).toBeGreaterThanOrEqual(16);

      const rng = new Rng(0xa3f1);
      const packets = [...attackPackets(attacker.address, true, realCookie, rng), ...attackPackets(victim.address, false, realCookie, rng)];
      const spec = { dst: s, dport: PORT, gap_us: 300, packets };
      const sent = await bed.runOk(attacker.ns, ['python3', path.join(__dirname, 'spoof.py')], { input: JSON.stringify(spec), timeoutMs: 60_000 });
      expect(JSON.parse(sent.stdout).packets).toBeGreaterThan(300);
      // Give the server time to answer (or to start a stream it must not start).
      await sleep(1500);

      const a = await bed.readCounters(attacker.ns);
      const v = await bed.readCounters(victim.ns);
      console.log(`[e2e f] attacker sent ${a.sent_own.bytes} B as itself, ${a.sent_forged.bytes} B as the victim; received ${a.recv.bytes} B; victim received ${v.recv.bytes} B`);
      // The server answered something (well-formed HELLOs get COOKIEs) ...
      expect(v.recv.packets).toBeGreaterThan(0);
      expect(a.recv.packets).toBeGreaterThan(0);
      // ... never more than it was sent, and never any data.
      expect(v.recv.bytes).toBeLessThanOrEqual(a.sent_forged.bytes);
      expect(a.recv.bytes).toBeLessThanOrEqual(a.sent_own.bytes);
      expect(v.recv_data.packets).toBe(0);
      expect(a.recv_data.packets).toBe(0);

      // The server still serves a legitimate client.
      const out = path.join(dir, 'honest');
      fs.mkdirSync(out);
      const res = await bed.run(honest.ns, rqcastArgv('fetch', `rqcast://${s}:${PORT}`, '-o', out, '--quiet', '--timeout', '30s'), cliOptions({ timeoutMs: 120_000 }));
      if (res.code !== 0) throw new Error(describeRun('honest fetch', res));
      expect(sha256(path.join(out, 'F.bin'))).toBe(digest);
    } finally {
      await stopProcess(server);
    }
  }, 150_000);
});
