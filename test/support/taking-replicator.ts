// A data engine for tests of the server's wiring (test/server/serve-cli.test.ts,
// test/server/tcp.test.ts): it takes every packet and sends nothing, and
// records the channels, unicast destinations and groups it is given.
import { EventEmitter } from 'node:events';
import type { MulticastGroupConfig, ReplicatorChannelConfig, ReplicatorContract } from '../../lib/transport/replicator-contract';

export class TakingReplicator extends EventEmitter implements ReplicatorContract {
  /** Replicator channels that exist now. */
  readonly channels = new Set<number>();
  /** `ID ADDRESS:PORT` of every addDestination, in order. */
  readonly destinations: string[] = [];
  /** Each group stream's group, by replicator channel, while it has one. */
  readonly groups = new Map<number, MulticastGroupConfig>();
  createChannel(id: number, _config: ReplicatorChannelConfig): void {
    this.channels.add(id);
  }
  removeChannel(id: number): void {
    this.channels.delete(id);
  }
  addDestination(id: number, address: string, port: number): void {
    this.destinations.push(`${id} ${address}:${port}`);
  }
  removeDestination(): void {}
  addGroup(channelId: number, group: MulticastGroupConfig): void {
    this.groups.set(channelId, group);
  }
  removeGroup(channelId: number): void {
    this.groups.delete(channelId);
  }
  push(_id: number, _packets: Uint8Array, _size: number, count: number): number {
    return count;
  }
  sendTo(): void {}
  channelStats() {
    return { queued: 0, destinations: 0, streamPackets: 0, datagrams: 0, bytes: 0 };
  }
  close(): void {}
}
