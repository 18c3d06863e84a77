/**
 * Where a live stream's bytes come from (`serve --live NAME[=PATH]`), as a
 * Node Readable for LiveSource:
 *
 * - no PATH, or `-`: standard input;
 * - `udp://ADDR:PORT`: datagrams received on ADDR:PORT (an MPEG-TS feed is
 *   188-byte packets, usually 7 per datagram), each datagram's payload
 *   appended in arrival order; a multicast ADDR is joined. The stream never
 *   ends by itself (UDP has no end): the server's stop ends it.
 * - any other PATH: a FIFO is read until its writer closes it; a regular
 *   file is read from its start and then followed as it grows, checked
 *   every `pollMs`, until `endAfterMs` pass without growth (default never:
 *   a growing file ends only with the server).
 *
 * A PATH that does not exist is refused at once (LiveInputError), before
 * anything listens, naming the fix.
 */
import * as dgram from 'dgram';
import { promises as fs, createReadStream } from 'fs';
import * as net from 'net';
import { Readable } from 'stream';
import { RqcastError } from '../errors';

export class LiveInputError extends RqcastError {
  constructor(message: string) {
    super('ERR_LIVE_INPUT', message);
  }
}

export type LiveInputSpec = { kind: 'stdin' } | { kind: 'udp'; address: string; port: number } | { kind: 'path'; path: string };

/** Parses the PATH of `--live NAME[=PATH]` (undefined or '-': stdin). */
export function parseLiveInput(text: string | undefined): LiveInputSpec {
  if (text === undefined || text === '-') return { kind: 'stdin' };
  if (text.startsWith('udp://')) {
    const m = /^udp:\/\/(\[[^\]]+\]|[^:/[\]]+):(\d{1,5})$/.exec(text);
    const address = m ? m[1].replace(/^\[|\]$/g, '') : '';
    const port = m ? Number(m[2]) : 0;
    if (!m || net.isIP(address) === 0 || port < 1 || port > 65535) {
      throw new LiveInputError(`live input "${text}": write udp://ADDR:PORT with a numeric address (IPv6 in brackets) and a port 1..65535`);
    }
    return { kind: 'udp', address, port };
  }
  if (text === '') throw new LiveInputError('live input: an empty PATH; give a file, a FIFO, udp://ADDR:PORT, or nothing for stdin');
  return { kind: 'path', path: text };
}

export interface OpenLiveInputOptions {
  /** Standard input (tests pass their own). Default process.stdin. */
  stdin?: Readable;
  /** Growing file: how often to look for more bytes. Default 50 ms. */
  pollMs?: number;
  /** Growing file: end the stream after this long without growth. Default never. */
  endAfterMs?: number;
}

/** A Readable of the live input; rejects with LiveInputError if it cannot be opened. */
export async function openLiveInput(spec: LiveInputSpec, options: OpenLiveInputOptions = {}): Promise<Readable> {
  switch (spec.kind) {
    case 'stdin':
      return options.stdin ?? process.stdin;
    case 'udp':
      return openUdp(spec.address, spec.port);
    case 'path':
      return openPath(spec.path, options);
  }
}

async function openUdp(address: string, port: number): Promise<Readable> {
  const family = net.isIPv6(address) ? 'udp6' : 'udp4';
  const socket = dgram.createSocket({ type: family, reuseAddr: true });
  const multicast = family === 'udp4' ? /^(22[4-9]|23\d)\./.test(address) : /^ff/i.test(address);
  const out = new Readable({
    read: () => undefined,
    destroy: (err, cb) => {
      try {
        socket.close();
      } catch {
        /* already closed */
      }
      cb(err);
    },
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', (e) => reject(new LiveInputError(`live input udp://${address}:${port}: ${e.message}`)));
    socket.bind(port, multicast ? undefined : address, () => resolve());
  });
  if (multicast) socket.addMembership(address);
  socket.on('error', (e) => out.destroy(e));
  socket.on('message', (m) => out.push(m));
  return out;
}

async function openPath(p: string, options: OpenLiveInputOptions): Promise<Readable> {
  let st;
  try {
    st = await fs.stat(p);
  } catch {
    throw new LiveInputError(`live input ${p} does not exist: create it (mkfifo ${p}, or a file that grows), or give udp://ADDR:PORT, or no PATH for stdin`);
  }
  if (st.isFIFO()) return createReadStream(p);
  if (!st.isFile()) throw new LiveInputError(`live input ${p} is neither a file nor a FIFO`);
  return followFile(p, options.pollMs ?? 50, options.endAfterMs);
}

/** A regular file read from its start and followed as it grows. */
function followFile(p: string, pollMs: number, endAfterMs?: number): Readable {
  let handle: fs.FileHandle | undefined;
  let position = 0;
  let lastGrowth = Date.now();
  let timer: NodeJS.Timeout | undefined;
  let reading = false;
  const buf = Buffer.allocUnsafe(1 << 16);
  const out = new Readable({
    read: () => {
      if (!timer && !reading) void pump();
    },
    destroy: (err, cb) => {
      if (timer) clearTimeout(timer);
      timer = undefined;
      void (handle?.close() ?? Promise.resolve()).then(() => cb(err), () => cb(err));
    },
  });
  const pump = async (): Promise<void> => {
    if (out.destroyed) return;
    reading = true;
    try {
      handle ??= await fs.open(p, 'r');
      for (;;) {
        const { bytesRead } = await handle.read(buf, 0, buf.length, position);
        if (bytesRead === 0) break;
        position += bytesRead;
        lastGrowth = Date.now();
        if (!out.push(Buffer.from(buf.subarray(0, bytesRead)))) {
          reading = false;
          return; // read() calls again
        }
      }
    } catch (e) {
      reading = false;
      out.destroy(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    reading = false;
    if (endAfterMs !== undefined && Date.now() - lastGrowth >= endAfterMs) {
      out.push(null);
      return;
    }
    timer = setTimeout(() => {
      timer = undefined;
      void pump();
    }, pollMs);
  };
  return out;
}
