/**
 * The UDP control socket's receive buffer (issue 13, finding 12): sized to
 * 4 MiB by default (what net.core.rmem_max allows), and what the kernel
 * still drops in a burst is counted. The burst is sent by a child process
 * while this process's event loop is blocked (execFileSync), so nothing is
 * read until it is over: every datagram is either received or dropped, and
 * the test counts both.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import type { ReplicatorContract } from '../../../lib/transport/replicator-contract';
import type { ControlReceived, TransportLogger } from '../../../lib/transport/server-transport';
import { DEFAULT_CONTROL_RECEIVE_BUFFER, UdpServerTransport } from '../../../lib/transport/udp/server-transport';
import { procNetAddress, udpSocketDrops } from '../../../lib/transport/udp/socket-drops';

/** A replicator nothing is asked of here. */
class NoReplicator extends EventEmitter {}

function rmemMax(): number {
  return Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8').trim());
}

async function open(receiveBufferBytes?: number, logger?: TransportLogger) {
  const t = new UdpServerTransport({ host: '127.0.0.1', port: 0, replicator: new NoReplicator() as unknown as ReplicatorContract, logger, receiveBufferBytes });
  const got: ControlReceived[] = [];
  const address = await t.open({ control: (m) => got.push(m), error: (e) => { throw e; } });
  return { t, got, address };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('/proc/net/udp address form: each 32-bit word little-endian, hex, then the port', () => {
  expect(procNetAddress('127.0.0.1', 8080, 'IPv4')).toBe('0100007F:1F90');
  expect(procNetAddress('0.0.0.0', 4433, 'IPv4')).toBe('00000000:1151');
  expect(procNetAddress('::1', 1, 'IPv6')).toBe('00000000000000000000000001000000:0001');
  expect(procNetAddress('2001:db8::2', 65535, 'IPv6')).toBe('B80D0120000000000000000002000000:FFFF');
});

test('the control socket asks for 4 MiB: the kernel grants that or rmem_max, and less than asked is a warning naming the sysctl', async () => {
  expect(DEFAULT_CONTROL_RECEIVE_BUFFER).toBe(4 * 1024 * 1024);
  const { t } = await open();
  try {
    // Linux reports twice the bytes it granted.
    expect(t.receiveBufferBytes).toBe(2 * Math.min(DEFAULT_CONTROL_RECEIVE_BUFFER, rmemMax()));
  } finally {
    await t.close();
  }
  const warnings: string[] = [];
  const logger: TransportLogger = { debug() {}, warn: (_o, msg) => warnings.push(msg ?? '') };
  const tooMuch = rmemMax() + 4096;
  const big = await open(tooMuch, logger);
  try {
    expect(big.t.receiveBufferBytes).toBe(2 * rmemMax());
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/raise net\.core\.rmem_max \(sysctl -w net\.core\.rmem_max=\d+\)/);
  } finally {
    await big.t.close();
  }
});

test('a burst the buffer cannot hold: every datagram is either received or counted in controlReceiveDrops', async () => {
  const N = 3000;
  const { t, got, address } = await open(4096);
  try {
    expect(t.counters.controlReceiveDrops).toBe(0);
    const sender = `
      const s = require('dgram').createSocket('udp4');
      const b = Buffer.alloc(1000, 1);
      let n = 0;
      const next = () => { if (n++ < ${N}) s.send(b, ${address.port}, '127.0.0.1', next); else s.close(); };
      next();`;
    // The event loop is blocked until the child has sent them all: nothing is read meanwhile.
    execFileSync(process.execPath, ['-e', sender]);
    let drops = 0;
    for (;;) {
      await sleep(100);
      drops = t.counters.controlReceiveDrops;
      if (got.length + drops >= N) break;
    }
    expect(got.length + drops).toBe(N);
    expect(drops).toBeGreaterThan(0);
    expect(udpSocketDrops('127.0.0.1', address.port)).toBe(drops);
  } finally {
    await t.close();
  }
});
