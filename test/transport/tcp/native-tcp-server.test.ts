/**
 * How the TCP transport gets its native server: the addon's TcpServer
 * constructed over the native replicator's engine (nativeEngineOf), or a
 * clear TcpUnavailableError when the addon has no TCP server or the data
 * engine is not the native one.
 */
import { loadNative, type RawReplicator } from '../../../lib/native';
import { nativeEngineOf, Replicator } from '../../../lib/transport/replicator';
import {
  nativeTcpServerFactory,
  type NativeTcpEvent,
  type NativeTcpServerOptions,
  type RawTcpServerBinding,
  TcpUnavailableError,
} from '../../../lib/transport/tcp/native-tcp-server';
import { FakeNativeTcpServer } from './fake-native-tcp-server';

test('the factory constructs the binding\'s TcpServer with the engine, the options and the event callback', () => {
  const made: { engine: unknown; options: NativeTcpServerOptions }[] = [];
  const binding: RawTcpServerBinding = {
    TcpServer: class extends FakeNativeTcpServer {
      constructor(engine: unknown, options: NativeTcpServerOptions, onEvents: (events: NativeTcpEvent[]) => void) {
        super(options, onEvents);
        made.push({ engine, options });
      }
    },
  };
  const engine = { name: 'engine' };
  const events: NativeTcpEvent[][] = [];
  const server = nativeTcpServerFactory(engine, binding)({ address: '0.0.0.0', port: 4433 }, (e) => events.push(e));
  expect(made).toEqual([{ engine, options: { address: '0.0.0.0', port: 4433 } }]);
  (server as FakeNativeTcpServer).emit({ type: 'open', id: 1, address: '192.0.2.1', port: 5 });
  expect(events).toEqual([[{ type: 'open', id: 1, address: '192.0.2.1', port: 5 }]]);
});

test('no TcpServer in the addon, or no native engine: TcpUnavailableError saying which', () => {
  expect(() => nativeTcpServerFactory({}, {})).toThrow(TcpUnavailableError);
  expect(() => nativeTcpServerFactory({}, {})).toThrow(/no TCP server/);
  const binding: RawTcpServerBinding = { TcpServer: FakeNativeTcpServer as unknown as RawTcpServerBinding['TcpServer'] };
  expect(() => nativeTcpServerFactory(undefined, binding)).toThrow(/needs the native replicator/);
  try {
    nativeTcpServerFactory(undefined, binding);
  } catch (e) {
    expect((e as TcpUnavailableError).code).toBe('ERR_RQ_TCP_UNAVAILABLE');
  }
});

test('nativeEngineOf: the raw engine of a native Replicator, nothing for anything else', () => {
  const raw = { close() {} } as unknown as RawReplicator;
  const rep = new Replicator({}, { Replicator: function () { return raw; } as unknown as ReturnType<typeof loadNative>['Replicator'] });
  expect(nativeEngineOf(rep)).toBe(raw);
  expect(nativeEngineOf({})).toBeUndefined();
  expect(nativeEngineOf(undefined)).toBeUndefined();
  expect(nativeEngineOf(null)).toBeUndefined();
});
