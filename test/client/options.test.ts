/** RqcastClient's options: defaults, checks and bounds (resolveClientOptions), and the server's address (resolveServer). */
import { promises as dns } from 'dns';
import { InvalidClientOptionError, UnresolvedHostError } from '../../lib/client/errors';
import { resolveClientOptions } from '../../lib/client/options';
import { resolveServer } from '../../lib/client/resolve';
import { parseRqcastUrl } from '../../lib/client/url';

const url = parseRqcastUrl('rqcast://127.0.0.1:4433');
const named = parseRqcastUrl('rqcast://127.0.0.1:4433//a.bin');

describe('resolveClientOptions', () => {
  test('defaults', () => {
    expect(resolveClientOptions(url, {}, '/cwd')).toEqual({
      outputDir: '/cwd',
      outputFile: undefined,
      ttlMs: 30_000,
      untilMs: undefined,
      ack: false,
      timeoutMs: 60_000,
      lossRate: 0,
      lossSeed: undefined,
      ackIntervalMs: 50,
      ackEveryPackets: 256,
      need: true,
      needIntervalMs: 10,
      needEveryPackets: 256,
      progressIntervalMs: 250,
      recvBufferBytes: 32 << 20,
      recvBatch: 256,
      useDgram: false,
      maxUnknownPackets: 4096,
      retryMs: 250,
      recordEsis: false,
      memoryBytes: 1 << 30,
      transport: 'auto',
      fallbackAfterMs: 2000,
      multicastInterface: undefined,
    });
  });

  test('counts are rounded; the receive buffer is capped at 1 GiB and the batch at 1024', () => {
    const o = resolveClientOptions(url, { ttlMs: 1500.4, ackEveryPackets: 9.6, recvBufferBytes: 2 ** 40, recvBatch: 5000, memoryBytes: 1e6 + 0.5 }, '/');
    expect(o).toMatchObject({ ttlMs: 1500, ackEveryPackets: 10, recvBufferBytes: 1 << 30, recvBatch: 1024, memoryBytes: 1e6 + 1 });
  });

  test.each([
    [{ ttlMs: 1, untilMs: Date.now() + 1000 }, /either ttlMs or untilMs/],
    [{ ttlMs: 0 }, /ttlMs must be a positive number/],
    [{ timeoutMs: -1 }, /timeoutMs must be a positive number/],
    [{ retryMs: Number.NaN }, /retryMs must be a positive number/],
    [{ memoryBytes: Infinity }, /memoryBytes must be a positive number/],
    [{ lossRate: 1 }, /lossRate must be in \[0, 1\)/],
    [{ lossRate: -0.1 }, /lossRate/],
    [{ untilMs: 1.5 }, /untilMs must be an integer/],
    [{ outputFile: 'x' }, /output file needs a URL that names one object/],
  ])('%j is refused', (o, message) => {
    expect(() => resolveClientOptions(url, o, '/')).toThrow(InvalidClientOptionError);
    expect(() => resolveClientOptions(url, o, '/')).toThrow(message);
  });

  test('an output file with a URL that names the object', () => {
    expect(resolveClientOptions(named, { outputFile: 'out.bin' }, '/').outputFile).toBe('out.bin');
  });
});

describe('resolveServer', () => {
  afterEach(() => jest.restoreAllMocks());

  test('literals as they are; an IPv4-mapped IPv6 address as IPv4', async () => {
    expect(await resolveServer('192.0.2.7', 1)).toEqual({ address: '192.0.2.7', port: 1, family: 4 });
    expect(await resolveServer('2001:db8::1', 2)).toEqual({ address: '2001:db8::1', port: 2, family: 6 });
    expect(await resolveServer('::ffff:192.0.2.7', 3)).toEqual({ address: '192.0.2.7', port: 3, family: 4 });
  });

  test('a name: its IPv4 address first (a server on 0.0.0.0 does not hear ::1), else the first', async () => {
    const lookup = jest.spyOn(dns, 'lookup') as unknown as jest.Mock;
    lookup.mockResolvedValueOnce([
      { address: '::1', family: 6 },
      { address: '127.0.0.1', family: 4 },
    ]);
    expect(await resolveServer('example.test', 4433)).toEqual({ address: '127.0.0.1', port: 4433, family: 4 });
    lookup.mockResolvedValueOnce([{ address: '2001:db8::2', family: 6 }]);
    expect(await resolveServer('v6.example.test', 4433)).toEqual({ address: '2001:db8::2', port: 4433, family: 6 });
  });

  test('a name the resolver does not know: UnresolvedHostError', async () => {
    const lookup = jest.spyOn(dns, 'lookup') as unknown as jest.Mock;
    lookup.mockRejectedValueOnce(Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' }));
    await expect(resolveServer('nosuch.example.test', 1)).rejects.toBeInstanceOf(UnresolvedHostError);
    lookup.mockResolvedValueOnce([]);
    await expect(resolveServer('empty.example.test', 1)).rejects.toThrow('cannot resolve host "empty.example.test"');
  });
});
