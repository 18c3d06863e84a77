// A server on loopback with raw test clients: what test/server/server.test.ts
// and test/server/hostile.test.ts both start from. RawClient is a dgram
// socket that reads control messages and ALC packets on one port.
import { randomBytes } from 'node:crypto';
import * as dgram from 'node:dgram';
import { type AlcPacket, decodeAlc } from '../../lib/protocol/alc';
import { decodeControl, encodeControl } from '../../lib/protocol/control';
import { type ControlMessage, MessageType } from '../../lib/protocol/messages';
import type { Catalogue } from '../../lib/content/catalogue';
import type { ReplicatorContract } from '../../lib/transport/replicator-contract';
import { RqcastServer, type RqcastServerOptions } from '../../lib/server/server';
import { Waiters } from './waiters';

/** A raw rqcast client socket: control messages and ALC packets on one port. */
export class RawClient {
  readonly socket: dgram.Socket;
  readonly control: ControlMessage[] = [];
  readonly data: AlcPacket[] = [];
  bytesReceived = 0;
  bytesSent = 0;
  /** Called with each ALC packet as it arrives. */
  onData?: (p: AlcPacket) => void;
  private readonly waiters = new Waiters();

  /** `host`: the loopback address to bind and to send control messages to. */
  static async open(host = '127.0.0.1', serverHost = host): Promise<RawClient> {
    const c = new RawClient(host.includes(':') ? 'udp6' : 'udp4', serverHost);
    await new Promise<void>((r) => c.socket.bind(0, host, r));
    // 4 MiB (or net.core.rmem_max, if lower) instead of ~200 KiB, which holds about 90 datagrams of 1.3 KB:
    // 23 ms of two 20 Mbit/s channels, so a test process descheduled that long on a loaded machine lost packets.
    c.socket.setRecvBufferSize(4 << 20);
    return c;
  }

  private constructor(
    type: 'udp4' | 'udp6',
    private readonly serverHost: string,
  ) {
    this.socket = dgram.createSocket(type);
    this.socket.on('message', (msg) => {
      this.bytesReceived += msg.length;
      if (msg[0] === 0x52 && msg[1] === 0x51) {
        const r = decodeControl(msg);
        if (r.ok) this.control.push(r.msg);
      } else {
        const r = decodeAlc(new Uint8Array(msg));
        if (r.ok) {
          this.data.push(r.packet);
          this.onData?.(r.packet);
        }
      }
      this.waiters.wake();
    });
  }

  get port(): number {
    return this.socket.address().port;
  }

  sendRaw(bytes: Uint8Array, port: number): void {
    this.bytesSent += bytes.length;
    this.socket.send(bytes, port, this.serverHost);
  }

  send(msg: ControlMessage, port: number): void {
    this.sendRaw(encodeControl(msg), port);
  }

  /** Resolves once `pred` holds (checked on every datagram). */
  until<T>(pred: () => T | undefined | false): Promise<T> {
    return this.waiters.until(pred);
  }

  /** The next control message of `type` after the first `from`. */
  async next<T extends ControlMessage['type']>(type: T, from = 0): Promise<Extract<ControlMessage, { type: T }>> {
    return this.until(() => this.control.slice(from).find((m) => m.type === type) as Extract<ControlMessage, { type: T }> | undefined);
  }

  async cookie(port: number): Promise<Uint8Array> {
    const from = this.control.length;
    this.send({ type: MessageType.Hello, nonce: randomBytes(8) }, port);
    return (await this.next(MessageType.Cookie, from)).cookie;
  }

  /** JOIN of `channels` and its JOINED. */
  async join(port: number, cookie: Uint8Array, channels: string[], ms = 60_000, ack = false) {
    const from = this.control.length;
    this.send({ type: MessageType.Join, cookie, channels, until: { kind: 'duration', ms }, ack }, port);
    return this.next(MessageType.Joined, from);
  }

  /** JOIN of main and its answer, JOINED or ERROR. */
  async joinAnswer(port: number, cookie: Uint8Array, ms: number, ack = false): Promise<ControlMessage> {
    const from = this.control.length;
    this.send({ type: MessageType.Join, cookie, channels: ['main'], until: { kind: 'duration', ms }, ack }, port);
    return this.until(() => this.control.slice(from).find((m) => m.type === MessageType.Joined || m.type === MessageType.Error));
  }

  close(): void {
    this.socket.close();
  }
}

export interface ServerRig {
  server: RqcastServer;
  replicator: ReplicatorContract;
  port: number;
  clients: RawClient[];
  /** A new RawClient on 127.0.0.1, closed by close(). */
  client(): Promise<RawClient>;
  close(): Promise<void>;
}

/** A server of `catalogue` on 127.0.0.1 (any port) with the replicator `make` gives: 20 Mbit/s, 20 ms ticks, 256-slot rings unless `options` say otherwise. */
export async function serverRig(catalogue: Catalogue, make: () => ReplicatorContract, options: Partial<RqcastServerOptions> = {}): Promise<ServerRig> {
  const replicator = make();
  const server = new RqcastServer({
    catalogue,
    port: 0,
    host: '127.0.0.1',
    replicator,
    rateMbps: 20,
    tickIntervalMs: 20,
    ringCapacity: 256,
    ...options,
  });
  const { port } = await server.listen();
  const clients: RawClient[] = [];
  return {
    server,
    replicator,
    port,
    clients,
    async client() {
      const c = await RawClient.open();
      clients.push(c);
      return c;
    },
    async close() {
      clients.forEach((c) => c.close());
      await server.close();
      replicator.close();
    },
  };
}
