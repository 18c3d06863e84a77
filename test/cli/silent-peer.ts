// A stand-in for a server that has not answered yet (the start-up tests: what a fetch loaded by the time its HELLO left).
import { createSocket } from 'node:dgram';

/** A UDP socket on 127.0.0.1 that never answers (a server that has not answered yet): counts the HELLOs and other datagrams it gets. */
export interface SilentPeer {
  readonly port: number;
  datagrams(): number;
  /** Resolves once a datagram came, or after about 2 s. */
  someArrived(): Promise<boolean>;
  close(): void;
}

export async function listenSilently(): Promise<SilentPeer> {
  const socket = createSocket('udp4');
  let count = 0;
  socket.on('message', () => count++);
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return {
    port: socket.address().port,
    datagrams: () => count,
    async someArrived() {
      for (let i = 0; i < 100 && count === 0; i++) await new Promise((r) => setTimeout(r, 20));
      return count > 0;
    },
    close: () => socket.close(),
  };
}
