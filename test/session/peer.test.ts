import fc from 'fast-check';
import { peerKey, peerOf, samePeer, tcpPeer, udpPeer } from '../../lib/session/peer';
import { InvalidAddressError, InvalidPortError } from '../../lib/errors';

describe('peerKey: one identity per transport, normalised address, port and connection', () => {
  test('the IPv4-mapped and dotted forms of one address are one peer; other IPv6 spellings too', () => {
    expect(peerKey(udpPeer('::ffff:192.0.2.1', 5))).toBe(peerKey(udpPeer('192.0.2.1', 5)));
    expect(samePeer(udpPeer('2001:db8::1', 5), udpPeer('2001:DB8:0:0:0:0:0:1', 5))).toBe(true);
  });

  test('transport, port, zone and connection each tell peers apart', () => {
    const keys = [
      udpPeer('192.0.2.1', 5),
      udpPeer('192.0.2.1', 6),
      udpPeer('192.0.2.2', 5),
      tcpPeer('192.0.2.1', 5, 1),
      tcpPeer('192.0.2.1', 5, 2),
      udpPeer('fe80::1%eth0', 5),
      udpPeer('fe80::1%eth1', 5),
      udpPeer('fe80::1', 5),
    ].map(peerKey);
    expect(new Set(keys).size).toBe(keys.length);
  });

  test('property: keys are equal exactly when (transport, address, port, connection) are', () => {
    const v4 = fc.tuple(fc.nat(255), fc.nat(255)).map(([a, b]) => `10.0.${a}.${b}`);
    const peer = fc.record({
      tcp: fc.boolean(),
      address: v4,
      mapped: fc.boolean(),
      port: fc.integer({ min: 0, max: 0xffff }),
      connection: fc.nat(3),
    });
    fc.assert(
      fc.property(peer, peer, (a, b) => {
        const make = (p: typeof a) => {
          const address = p.mapped ? `::ffff:${p.address}` : p.address;
          return p.tcp ? tcpPeer(address, p.port, p.connection) : udpPeer(address, p.port);
        };
        const same = a.tcp === b.tcp && a.address === b.address && a.port === b.port && (!a.tcp || a.connection === b.connection);
        expect(peerKey(make(a)) === peerKey(make(b))).toBe(same);
      }),
    );
  });

  test('a zone holding spaces and digits cannot pose as another port or connection', () => {
    const a = peerKey(udpPeer('fe80::1%a 1', 2));
    const b = peerKey(udpPeer('fe80::1%a', 12));
    expect(a).not.toBe(b);
    expect(peerKey(tcpPeer('fe80::1%a 1', 2, 3))).not.toBe(peerKey(tcpPeer('fe80::1%a', 1, 23)));
    // A TCP peer without a connection id (the type allows it) cannot pose as one with.
    expect(peerKey({ transport: 'tcp', address: 'fe80::1%a 1', port: 2 })).not.toBe(peerKey(tcpPeer('fe80::1%a', 1, 2)));
  });

  test('what a transport never reports is refused with a typed error', () => {
    expect(() => peerKey(udpPeer('not an address', 5))).toThrow(InvalidAddressError);
    for (const port of [-1, 65536, 1.5, Number.NaN]) expect(() => peerKey(udpPeer('192.0.2.1', port))).toThrow(InvalidPortError);
  });
});

test('peerOf keeps the identity fields only', () => {
  expect(peerOf({ ...udpPeer('192.0.2.1', 5), bytesReceived: 10 } as never)).toStrictEqual({ transport: 'udp', address: '192.0.2.1', port: 5 });
  expect(peerOf(tcpPeer('192.0.2.1', 5, 9))).toStrictEqual({ transport: 'tcp', address: '192.0.2.1', port: 5, connection: 9 });
});
