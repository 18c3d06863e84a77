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
import { ControlMessage, MessageType } from '../../lib/protocol/messages';

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

function run(args: string[]): Run {
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
  };
  const program = new Command().exitOverride().configureOutput({ writeErr: (s) => (r.errors += s), writeOut: () => {} });
  registerServeCommand(program, io);
  r.done = program.parseAsync(['node', 'rqcast', 'serve', ...args]).then(() => undefined);
  return r;
}

async function ask(port: number, sock: dgram.Socket, msg: ControlMessage, type: MessageType): Promise<ControlMessage> {
  return new Promise((resolve) => {
    const on = (buf: Buffer): void => {
      if (buf[0] !== 0x52) return;
      const d = decodeControl(buf);
      if (d.ok && d.msg.type === type) {
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
  ])('%s', (spec, want) => expect(parseChannelSpec(spec)).toEqual(want));

  test.each(['nocolon', ':a.bin', 'x:', 'x::5', 'x:a.bin:0', 'x:a.bin:fast'])('refuses %j', (spec) => {
    expect(() => parseChannelSpec(spec)).toThrow();
  });
});

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
      { name: 'main', tsi: 1, rateMbps: 5, windowBlocks: 3, sliding: false, objects: ['a.bin', 'b.bin', 'c.bin'] },
      { name: 'extra', tsi: 2, rateMbps: 2, windowBlocks: 2, sliding: false, objects: ['c.bin', 'b.bin'] },
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
    [['--bogus']],
  ])('bad option %j is a usage error', async (opt) => {
    const r = run([path.join(dir, 'c.bin'), ...opt]);
    await expect(r.done).rejects.toBeInstanceOf(CommanderError);
    expect(r.lines).toEqual([]);
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
