/** `rqcast serve` (lib/cli/serve.ts), in process, with a raw client over loopback. */
import { randomBytes } from 'node:crypto';
import * as dgram from 'node:dgram';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Command, CommanderError } from 'commander';
import { parseChannelSpec, registerServeCommand, ServeIo } from '../../lib/cli/serve';
import { decodeAlc } from '../../lib/protocol/alc';
import { decodeControl, encodeControl } from '../../lib/protocol/control';
import { ControlMessage, ErrorCode, MessageType } from '../../lib/protocol/messages';
import { isLocalUnicast } from '../../lib/transport/multicast/group-config';
import type { ReplicatorContract } from '../../lib/transport/replicator-contract';
import { TakingReplicator } from '../support/taking-replicator';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'rqcast-serve-'));
  mkdirSync(path.join(dir, 'site'));
  writeFileSync(path.join(dir, 'site', 'a.bin'), randomBytes(5000));
  writeFileSync(path.join(dir, 'site', 'b.bin'), randomBytes(3000));
  writeFileSync(path.join(dir, 'c.bin'), randomBytes(2000));
  writeFileSync(path.join(dir, 'empty.bin'), Buffer.alloc(0));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => {
  process.exitCode = undefined;
});

interface Run {
  lines: string[];
  errors: string;
  stop(): void;
  done: Promise<void>;
  ready: Promise<string>;
}


function run(args: string[], replicator?: ReplicatorContract): Run {
  let stop!: () => void;
  const stopped = new Promise<string>((resolve) => (stop = () => resolve('test')));
  const lines: string[] = [];
  let ready!: (line: string) => void;
  const readyP = new Promise<string>((r) => (ready = r));
  const r: Run = { lines, errors: '', stop, done: Promise.resolve(), ready: readyP };
  const io: ServeIo = {
    stdout: (line) => {
      lines.push(line);
      ready(line);
    },
    stderr: { write: (s: string) => ((r.errors += s), true) } as unknown as NodeJS.WritableStream,
    stopSignal: () => stopped,
    replicator,
  };
  const program = new Command().exitOverride().configureOutput({ writeErr: (s) => (r.errors += s), writeOut: () => {} });
  registerServeCommand(program, io);
  r.done = program.parseAsync(['node', 'rqcast', 'serve', ...args]).then(() => undefined);
  return r;
}

async function ask(port: number, sock: dgram.Socket, msg: ControlMessage, type: MessageType | MessageType[]): Promise<ControlMessage> {
  const types = Array.isArray(type) ? type : [type];
  return new Promise((resolve) => {
    const on = (buf: Buffer): void => {
      if (buf[0] !== 0x52) return;
      const d = decodeControl(buf);
      if (d.ok && types.includes(d.msg.type)) {
        sock.off('message', on);
        resolve(d.msg);
      }
    };
    sock.on('message', on);
    sock.send(encodeControl(msg), port, '127.0.0.1');
  });
}

describe('parseChannelSpec', () => {
  test.each([
    ['hd:a.mp4', { name: 'hd', paths: ['a.mp4'], rateMbps: undefined }],
    ['hd:a.mp4,b/c.mp4', { name: 'hd', paths: ['a.mp4', 'b/c.mp4'], rateMbps: undefined }],
    ['hd:a.mp4,dir:2.5', { name: 'hd', paths: ['a.mp4', 'dir'], rateMbps: 2.5 }],
    ['hd:a.mp4@239.1.2.3:5000', { name: 'hd', paths: ['a.mp4'], rateMbps: undefined, multicast: { group: '239.1.2.3', port: 5000 } }],
    ['hd:a.mp4,dir:2.5@[ff3e::8000:1]:5000', { name: 'hd', paths: ['a.mp4', 'dir'], rateMbps: 2.5, multicast: { group: 'ff3e::8000:1', port: 5000 } }],
    // An '@' that starts no group belongs to a file name.
    ['hd:icon@2x.png', { name: 'hd', paths: ['icon@2x.png'], rateMbps: undefined }],
    ['hd:a@1.2.3.4.txt:3', { name: 'hd', paths: ['a@1.2.3.4.txt'], rateMbps: 3 }],
    ['hd:x@y/a.bin@239.1.2.3:5000', { name: 'hd', paths: ['x@y/a.bin'], rateMbps: undefined, multicast: { group: '239.1.2.3', port: 5000 } }],
  ])('%s', (spec, want) => expect(parseChannelSpec(spec)).toEqual(want));

  test.each([
    'nocolon',
    ':a.bin',
    'x:',
    'x::5',
    'x:a.bin:0',
    'x:a.bin:fast',
    'x:a.bin@239.1.2.3',
    'x:a.bin@239.1.2.3:0',
    'x:a.bin@10.0.0.1:5000',
    'x:a.bin@[2001:db8::1]:5000',
    'x:a.bin@[ff3e::1]',
    'x@239.1.2.3:5000',
    'x:@239.1.2.3:5000',
  ])('refuses %j', (spec) => {
    expect(() => parseChannelSpec(spec)).toThrow();
  });
});

/** The listening line, or the failure (instead of waiting for a line that never comes). */
function started(r: Run): Promise<string> {
  return Promise.race([r.ready, r.done.then(() => Promise.reject(new Error(`serve ended: ${r.errors}`)))]);
}

/** An IPv4 address of no interface of this host. */
const NOT_LOCAL = ['203.0.113.254', '198.51.100.254', '192.0.2.254'].find((a) => !isLocalUnicast(a, 4)) as string;

describe('rqcast serve', () => {
  test('prints the listening line once ready, serves channels, stops cleanly', async () => {
    const r = run([
      path.join(dir, 'site'),
      '--port', '0', '--bind', '127.0.0.1', '--rate', '5', '--quiet', '--json',
      '--channel', `extra:${path.join(dir, 'c.bin')},${path.join(dir, 'site', 'b.bin')}:2`,
    ]);
    const info = JSON.parse(await r.ready) as {
      event: string;
      port: number;
      channels: { name: string; tsi: number; rateMbps: number; windowBlocks: number; sliding: boolean; objects: string[] }[];
      objects: { toi: number; name: string; length: number; sha256: string }[];
    };
    expect(info.event).toBe('listening');
    expect(info.channels).toEqual([
      // One block at a time, in order (docs/PROTOCOL.md §10.3).
      { name: 'main', tsi: 1, rateMbps: 5, windowBlocks: 1, sliding: true, objects: ['a.bin', 'b.bin', 'c.bin'] },
      { name: 'extra', tsi: 2, rateMbps: 2, windowBlocks: 1, sliding: true, objects: ['c.bin', 'b.bin'] },
    ]);
    expect(info.objects.map((o) => [o.toi, o.name, o.length])).toEqual([
      [1, 'a.bin', 5000],
      [2, 'b.bin', 3000],
      [3, 'c.bin', 2000],
    ]);
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((res) => sock.bind(0, '127.0.0.1', res));
    try {
      const cookie = (await ask(info.port, sock, { type: MessageType.Hello, nonce: randomBytes(8) }, MessageType.Cookie)) as { cookie: Uint8Array };
      const gotData = new Promise<number>((resolve) => {
        sock.on('message', (buf) => {
          const p = decodeAlc(new Uint8Array(buf));
          if (p.ok) resolve(p.packet.tsi);
        });
      });
      const joined = await ask(
        info.port,
        sock,
        { type: MessageType.Join, cookie: cookie.cookie, channels: ['extra'], until: { kind: 'duration', ms: 10_000 }, ack: false },
        MessageType.Joined,
      );
      expect(joined).toMatchObject({ channels: [{ name: 'extra', tsi: 2 }] });
      expect(await gotData).toBe(2);
    } finally {
      sock.close();
    }
    r.stop();
    await r.done;
    expect(process.exitCode).toBe(0);
  });

  test('--max-sessions-per-address 1: a second session from the same address gets ERROR 7 naming the limit', async () => {
    const r = run([path.join(dir, 'c.bin'), '--port', '0', '--bind', '127.0.0.1', '--quiet', '--json', '--max-sessions-per-address', '1']);
    const { port } = JSON.parse(await r.ready) as { port: number };
    const socks = [dgram.createSocket('udp4'), dgram.createSocket('udp4')];
    try {
      const answers: ControlMessage[] = [];
      for (const sock of socks) {
        await new Promise<void>((res) => sock.bind(0, '127.0.0.1', res));
        const cookie = (await ask(port, sock, { type: MessageType.Hello, nonce: randomBytes(8) }, MessageType.Cookie)) as { cookie: Uint8Array };
        const join: ControlMessage = { type: MessageType.Join, cookie: cookie.cookie, channels: ['main'], until: { kind: 'duration', ms: 10_000 }, ack: false };
        answers.push(await ask(port, sock, join, [MessageType.Joined, MessageType.Error]));
      }
      expect(answers[0].type).toBe(MessageType.Joined);
      expect(answers[1]).toMatchObject({ type: MessageType.Error, code: ErrorCode.TooManySessions, reason: expect.stringMatching(/at most 1\)/) });
    } finally {
      socks.forEach((s) => s.close());
    }
    r.stop();
    await r.done;
    expect(process.exitCode).toBe(0);
  });

  test('plain listening line', async () => {
    const r = run([path.join(dir, 'c.bin'), '--port', '0', '--bind', '127.0.0.1', '--quiet', '--no-code']);
    expect(await r.ready).toMatch(/^listening on 127\.0\.0\.1:\d+$/);
    r.stop();
    await r.done;
    expect(process.exitCode).toBe(0);
  });

  test.each([
    [['/nonexistent/rqcast-file'], /no such file or directory/],
    [['EMPTY'], /is empty/],
    [[], /nothing to serve/],
    [['C', '--channel', 'x:SITE/zzz'], /no such file/],
  ])('exit 2 with one clear line: %j', async (args, message) => {
    // Placeholders are whole words (a temp dir's random name may contain 'C').
    const fixed = args.map((a) =>
      a.replace(/\b(EMPTY|C|SITE)\b/g, (w) => path.join(dir, w === 'EMPTY' ? 'empty.bin' : w === 'C' ? 'c.bin' : 'site')),
    );
    const r = run([...fixed, '--port', '0', '--bind', '127.0.0.1', '--quiet']);
    await r.done;
    expect(process.exitCode).toBe(2);
    expect(r.errors).toMatch(message);
    expect(r.errors.trim().split('\n')).toHaveLength(1);
    expect(r.lines).toEqual([]);
  });

  test.each([
    [['--rate', '0']],
    [['--rate', 'fast']],
    [['--port', '70000']],
    [['--symbol-size', '8']],
    [['--secret', 'abcd']],
    [['--memory', '0']],
    [['--memory', 'lots']],
    [['--pass-overhead', '-5']],
    [['--channel', 'nocolon']],
    [['--channel', 'x:C@239.1.1.1']],
    [['--multicast', '10.0.0.1:5000']],
    [['--multicast', '239.1.1.1:0']],
    [['--multicast', '239.1.1.1']],
    [['--multicast', 'ff3e::1:5000']],
    [['--multicast-ttl', '256']],
    [['--multicast-ttl', '-1']],
    [['--multicast-if', 'rqcast-no-such-if0']],
    [['--multicast-source', '239.1.1.1']],
    [['--multicast-source', NOT_LOCAL]],
    [['--max-sessions-per-address', '0']],
    [['--max-sessions-per-address', 'many']],
    [['--bogus']],
  ])('bad option %j is a usage error', async (opt) => {
    const r = run([path.join(dir, 'c.bin'), ...opt]);
    await expect(r.done).rejects.toBeInstanceOf(CommanderError);
    expect(r.lines).toEqual([]);
  });

  test.each([
    [['--multicast-ttl', '2'], /^rqcast serve: --multicast-ttl needs a group: --multicast GROUP:PORT or --channel NAME:FILES@GROUP:PORT$/],
    [['--multicast-if', 'lo'], /--multicast-if needs a group/],
    [['--multicast', '239.1.1.1:5000', '--multicast-source', '::1'], /channel main: multicast source ::1 is not a unicast IPv4 address of this host \(the group 239\.1\.1\.1 is IPv4\)/],
    [['--multicast', '239.1.1.1:5000', '--channel', 'main:C@239.2.2.2:5000'], /channel main has two groups/],
  ])('multicast options the server refuses: exit 2 with one clear line: %j', async (opts, message) => {
    const fake = new TakingReplicator();
    const r = run([path.join(dir, 'c.bin'), '--port', '0', '--bind', '127.0.0.1', '--quiet', ...opts.map((o) => o.replace(/\bC\b/, path.join(dir, 'c.bin')))], fake);
    await r.done;
    expect(process.exitCode).toBe(2);
    expect(r.errors.trim()).toMatch(message);
    expect(r.errors.trim().split('\n')).toHaveLength(1);
    expect(r.lines).toEqual([]);
    expect(fake.groups.size).toBe(0);
  });

  test('a taken port exits 1', async () => {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((res) => sock.bind(0, '127.0.0.1', res));
    try {
      const r = run([path.join(dir, 'c.bin'), '--port', String(sock.address().port), '--bind', '127.0.0.1', '--quiet']);
      await r.done;
      expect(process.exitCode).toBe(1);
      expect(r.errors).toMatch(/EADDRINUSE/);
    } finally {
      sock.close();
    }
  });
});

describe('rqcast serve with multicast groups', () => {
  interface Listening {
    port: number;
    channels: { name: string; tsi: number; multicast?: { group: string; port: number; source?: string; ttl: number } }[];
  }

  test('--multicast and --channel @GROUP:PORT: the groups reach the engine, the JSON line and JOINED', async () => {
    const fake = new TakingReplicator();
    const r = run(
      [
        path.join(dir, 'site'),
        ...['--port', '0', '--bind', '127.0.0.1', '--quiet', '--json'],
        ...['--multicast', '239.5.5.5:5500', '--multicast-ttl', '3'],
        ...['--channel', `v6:${path.join(dir, 'c.bin')}:2@[ff3e::8000:1]:5501`],
        ...['--channel', `plain:${path.join(dir, 'c.bin')}`],
      ],
      fake,
    );
    try {
      const info = JSON.parse(await started(r)) as Listening;
      expect(info.channels.map((c) => [c.name, c.tsi, c.multicast])).toEqual([
        // The source defaults to the --bind address, for the group of its family only.
        ['main', 1, { group: '239.5.5.5', port: 5500, source: '127.0.0.1', ttl: 3 }],
        ['v6', 2, { group: 'ff3e::8000:1', port: 5501, ttl: 3 }],
        ['plain', 3, undefined],
      ]);
      expect(Array.from(fake.groups)).toEqual([
        [0x80000001, { group: '239.5.5.5', port: 5500, ttl: 3, loop: true, source: '127.0.0.1' }],
        [0x80000002, { group: 'ff3e::8000:1', port: 5501, ttl: 3, loop: true }],
      ]);
      const sock = dgram.createSocket('udp4');
      await new Promise<void>((res) => sock.bind(0, '127.0.0.1', res));
      try {
        const cookie = (await ask(info.port, sock, { type: MessageType.Hello, nonce: randomBytes(8) }, MessageType.Cookie)) as { cookie: Uint8Array };
        const joined = await ask(
          info.port,
          sock,
          {
            type: MessageType.Join,
            cookie: cookie.cookie,
            channels: ['main', 'v6', 'plain'],
            until: { kind: 'duration', ms: 10_000 },
            ack: false,
            multicast: ['main', 'v6', 'plain'],
          },
          MessageType.Joined,
        );
        expect(joined).toMatchObject({
          channels: [
            { name: 'main', tsi: 1, multicast: { group: '239.5.5.5', port: 5500, source: '127.0.0.1', unicast: false } },
            { name: 'v6', tsi: 2, multicast: { group: 'ff3e::8000:1', port: 5501, unicast: false } },
            { name: 'plain', tsi: 3 },
          ],
        });
      } finally {
        sock.close();
      }
    } finally {
      r.stop();
      await r.done;
    }
    expect(process.exitCode).toBe(0);
    expect(fake.groups.size).toBe(0);
  });

  test.each([
    // An interface by name: no address to announce (and --bind is a wildcard here).
    [['--multicast-if', 'lo'], { interface: 'lo' }],
    // By address: the sink takes the address, and it is the announced source.
    [['--multicast-if', '127.0.0.1'], { interface: '127.0.0.1', source: '127.0.0.1' }],
    [['--multicast-source', '127.0.0.1'], { source: '127.0.0.1' }],
  ])('%j', async (opts, want) => {
    const fake = new TakingReplicator();
    const r = run([path.join(dir, 'c.bin'), '--port', '0', '--bind', '0.0.0.0', '--quiet', '--json', '--channel', `main:${path.join(dir, 'c.bin')}@239.6.6.6:5600`, ...opts], fake);
    try {
      await started(r);
      expect(fake.groups.get(0x80000001)).toEqual({ group: '239.6.6.6', port: 5600, ttl: 1, loop: true, ...want });
    } finally {
      r.stop();
      await r.done;
    }
    expect(process.exitCode).toBe(0);
  });

  test('--help explains the multicast options', async () => {
    let out = '';
    const program = new Command().exitOverride().configureOutput({ writeOut: (s) => (out += s), writeErr: () => {} });
    registerServeCommand(program);
    await expect(program.parseAsync(['node', 'rqcast', 'serve', '--help'])).rejects.toBeInstanceOf(CommanderError);
    for (const option of ['--multicast <group:port>', '--multicast-ttl <hops>', '--multicast-if <addr|name>', '--multicast-source <addr>', '[@GROUP:PORT]']) {
      expect(out).toContain(option);
    }
    expect(out).toMatch(/source-specific/);
  });
});
