// Network-namespace testbed for end-to-end tests and the e2e benchmark.
//
// Topology: one "bridge" namespace holding a Linux bridge, one server
// namespace and N client namespaces, each joined to the bridge by a veth
// pair (the bridge-side end is created inside the bridge namespace, so no
// interface name ever lives in the root namespace and parallel runs cannot
// collide). Addresses are 10.200.0.0/16: the server is 10.200.0.1, client i
// is 10.200.(1 + i / 250).(10 + i % 250). Every name carries the creating
// process's pid, so a run can find and remove what an earlier, killed run of
// the same tree left behind (its pid is gone) without touching anything else.
//
// Loss is injected with nftables on a namespace's *input* hook (tc netem is
// not available here): `numgen random mod 100 < pct drop` drops each matching
// datagram independently with probability pct/100, after the packet has
// crossed the veth, so the sender's view (and its pacing) is unchanged.
//
// Teardown always runs: `destroy()` (call it from afterAll), plus process
// 'exit'/'SIGINT'/'SIGTERM' handlers that delete every namespace this process
// created, with synchronous calls (an exit handler cannot await).
import { ChildProcess, execFileSync, spawn, spawnSync } from 'child_process';

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Kill the process (SIGKILL) after this long; the result then has signal set. */
  timeoutMs?: number;
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** A process running inside a namespace, with its output collected. */
export class NsProcess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  private readonly done: Promise<ExecResult>;
  private exited = false;
  private timer: NodeJS.Timeout | undefined;
  private lineWaiters: Array<{ re: RegExp; resolve: (m: RegExpMatchArray) => void }> = [];

  constructor(argv: string[], options: RunOptions = {}) {
    this.child = spawn(argv[0], argv.slice(1), {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
      // Own process group, so kill() reaches grandchildren (`ip netns exec`
      // execs the command, but e.g. /usr/bin/time forks it).
      detached: true,
    });
    this.child.stdout!.setEncoding('utf8');
    this.child.stderr!.setEncoding('utf8');
    this.child.stdout!.on('data', (s: string) => {
      this.stdout += s;
      this.checkWaiters();
    });
    this.child.stderr!.on('data', (s: string) => {
      this.stderr += s;
    });
    if (options.input !== undefined) this.child.stdin!.end(options.input);
    else this.child.stdin!.end();
    this.done = new Promise((resolve) => {
      this.child.on('close', (code, signal) => {
        this.exited = true;
        if (this.timer) clearTimeout(this.timer);
        resolve({ code, signal, stdout: this.stdout, stderr: this.stderr });
      });
      this.child.on('error', (err) => {
        this.exited = true;
        if (this.timer) clearTimeout(this.timer);
        resolve({ code: null, signal: null, stdout: this.stdout, stderr: this.stderr + String(err) });
      });
    });
    if (options.timeoutMs !== undefined) {
      this.timer = setTimeout(() => this.kill('SIGKILL'), options.timeoutMs);
      this.timer.unref();
    }
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return !this.exited;
  }

  wait(): Promise<ExecResult> {
    return this.done;
  }

  /** Resolves with the first match of `re` on stdout (already seen or to come). */
  waitForStdout(re: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const m = this.stdout.match(re);
      if (m) return resolve(m);
      const timer = setTimeout(() => {
        reject(new Error(`no ${re} on stdout within ${timeoutMs} ms; stdout=${this.stdout.slice(-2000)} stderr=${this.stderr.slice(-2000)}`));
      }, timeoutMs);
      const waiter = {
        re,
        resolve: (mm: RegExpMatchArray) => {
          clearTimeout(timer);
          resolve(mm);
        },
      };
      this.lineWaiters.push(waiter);
      void this.done.then(() => {
        if (this.lineWaiters.includes(waiter)) {
          this.lineWaiters = this.lineWaiters.filter((w) => w !== waiter);
          clearTimeout(timer);
          reject(new Error(`process exited before ${re} on stdout; stdout=${this.stdout.slice(-2000)} stderr=${this.stderr.slice(-2000)}`));
        }
      });
    });
  }

  private checkWaiters(): void {
    for (const w of [...this.lineWaiters]) {
      const m = this.stdout.match(w.re);
      if (m) {
        this.lineWaiters = this.lineWaiters.filter((x) => x !== w);
        w.resolve(m);
      }
    }
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.exited || this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, signal);
    } catch {
      // Already gone.
    }
  }
}

export interface NsNode {
  /** Namespace name (for `ip netns exec`). */
  ns: string;
  /** Interface name inside the namespace. */
  ifname: string;
  address: string;
  /** IPv6 address, once Testbed.enableIPv6() gave one. */
  address6?: string;
}

/** An interface's kernel counters (/sys/class/net/IF/statistics). */
export interface InterfaceCounters {
  txBytes: number;
  txPackets: number;
  rxBytes: number;
  rxPackets: number;
}

export interface LossOptions {
  /** Only UDP (default true): ICMP/ARP are left alone either way (ARP is not inet). */
  udpOnly?: boolean;
  /** Only TCP segments (overrides udpOnly; the UDP-only options below do not apply). */
  tcpOnly?: boolean;
  /** With tcpOnly: only segments from this source port (e.g. the server's service port). */
  tcpSourcePort?: number;
  /** Datagrams from these source ports pass untouched (e.g. the control port). */
  exceptSourcePorts?: number[];
  /** Only datagrams to this destination port are candidates. */
  destinationPort?: number;
  /** Only datagrams whose UDP length (header + payload) exceeds this are candidates. */
  minUdpLength?: number;
}

export interface LossCounters {
  /** Packets that matched the candidate rule (seen by the input hook). */
  seen: number;
  /** Of those, dropped. */
  dropped: number;
}

const LOSS_TABLE = 'rqloss';

/** A table of named rules (addCounter, addDrop): the priority of its chains, and what a rule does with a packet it matches. */
interface NamedRules {
  table: string;
  priority: number;
  action: 'counter' | 'counter drop';
  what: string;
}
const COUNTERS: NamedRules = { table: 'rqcount', priority: -10, action: 'counter', what: 'counter' };
// Before the loss and count tables: a dropped packet is neither lost nor counted there.
const DROPS: NamedRules = { table: 'rqdrop', priority: -20, action: 'counter drop', what: 'drop rule' };

const NAME_PREFIX = 'rqt';
const created = new Set<string>();
const liveProcesses = new Set<NsProcess>();
let handlersInstalled = false;
let sequence = 0;

function ipSync(args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function deleteNamespaceSync(ns: string): void {
  // Processes first: a namespace with live processes lingers (and keeps its
  // veths) after `ip netns del`. Only namespaces this code created get here.
  try {
    const pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  } catch {
    // namespace already gone
  }
  spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
}

function cleanupAllSync(): void {
  for (const p of liveProcesses) p.kill('SIGKILL');
  liveProcesses.clear();
  for (const ns of created) deleteNamespaceSync(ns);
  created.clear();
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', cleanupAllSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      cleanupAllSync();
      process.kill(process.pid, sig);
    });
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Deletes namespaces left by earlier runs of this harness whose process is gone. */
export function removeStaleNamespaces(): string[] {
  const removed: string[] = [];
  let list = '';
  try {
    list = ipSync(['netns', 'list']);
  } catch {
    return removed;
  }
  for (const line of list.split('\n')) {
    const name = line.split(' ')[0];
    const m = /^rqt(\d+)-/.exec(name);
    if (m && !pidAlive(Number(m[1]))) {
      deleteNamespaceSync(name);
      removed.push(name);
    }
  }
  return removed;
}

export interface Probe {
  ok: boolean;
  reason?: string;
}

let probeCache: Probe | undefined;

/**
 * Checks that this kernel and user can create a namespace, a veth pair, a
 * bridge and an nftables numgen rule. Tests skip (with the printed reason)
 * only when this fails.
 */
export function probeNetns(): Probe {
  if (probeCache) return probeCache;
  const ns = `${NAME_PREFIX}${process.pid}-probe`;
  const steps: Array<[string, string[]]> = [
    ['ip netns add', ['ip', 'netns', 'add', ns]],
    ['veth', ['ip', '-n', ns, 'link', 'add', 'pa', 'type', 'veth', 'peer', 'name', 'pb']],
    ['bridge', ['ip', '-n', ns, 'link', 'add', 'br0', 'type', 'bridge']],
    ['nft table', ['ip', 'netns', 'exec', ns, 'nft', 'add', 'table', 'inet', 'probe']],
    ['nft chain', ['ip', 'netns', 'exec', ns, 'nft', 'add chain inet probe input { type filter hook input priority 0 ; }']],
    ['nft numgen', ['ip', 'netns', 'exec', ns, 'nft', 'add rule inet probe input udp dport 9 numgen random mod 100 < 10 counter drop']],
  ];
  let result: Probe = { ok: true };
  for (const [what, argv] of steps) {
    const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8' });
    if (r.error || r.status !== 0) {
      result = { ok: false, reason: `${what} failed: ${r.error ? String(r.error) : r.stderr.trim()}` };
      break;
    }
  }
  spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  probeCache = result;
  return result;
}

export function clientAddress(i: number): string {
  return `10.200.${1 + Math.floor(i / 250)}.${10 + (i % 250)}`;
}

export const SERVER_ADDRESS = '10.200.0.1';

/** IPv6 (a ULA prefix, RFC 4193) of client i, once Testbed.enableIPv6() ran. */
export function clientAddress6(i: number): string {
  return `fd00:200::${(0x1000 + i).toString(16)}`;
}

export const SERVER_ADDRESS6 = 'fd00:200::1';

export interface TestbedOptions {
  clients: number;
  /** Socket buffer ceilings set in every namespace (net.core.[rw]mem_max). */
  socketBufferMax?: number;
}

export class Testbed {
  readonly id: string;
  readonly bridgeNs: string;
  readonly server: NsNode;
  readonly clients: NsNode[];
  private destroyed = false;

  private constructor(id: string, bridgeNs: string, server: NsNode, clients: NsNode[]) {
    this.id = id;
    this.bridgeNs = bridgeNs;
    this.server = server;
    this.clients = clients;
  }

  static async create(options: TestbedOptions): Promise<Testbed> {
    installHandlers();
    removeStaleNamespaces();
    const id = `${NAME_PREFIX}${process.pid}-${sequence++}`;
    const bridgeNs = `${id}-br`;
    const server: NsNode = { ns: `${id}-s`, ifname: 'eth0', address: SERVER_ADDRESS };
    const clients: NsNode[] = [];
    for (let i = 0; i < options.clients; i++) {
      clients.push({ ns: `${id}-c${i}`, ifname: 'eth0', address: clientAddress(i) });
    }
    const bed = new Testbed(id, bridgeNs, server, clients);
    try {
      bed.build(options.socketBufferMax ?? 8 * 1024 * 1024);
    } catch (err) {
      bed.destroy();
      throw err;
    }
    return bed;
  }

  private build(bufMax: number): void {
    const nodes = [this.server, ...this.clients];
    for (const ns of [this.bridgeNs, ...nodes.map((n) => n.ns)]) {
      ipSync(['netns', 'add', ns]);
      created.add(ns);
    }
    // One `ip -batch` per namespace keeps setup fast (20+ clients).
    const bridgeCmds = [
      'link add br0 type bridge',
      // Plain flooding of multicast (uftp's baseline uses it); IGMP snooping
      // would make delivery depend on querier timing.
      'link set br0 type bridge mcast_snooping 0',
      'link set br0 up',
      'link set lo up',
    ];
    nodes.forEach((n, i) => {
      bridgeCmds.push(`link add p${i} type veth peer name ${n.ifname} netns ${n.ns}`);
      bridgeCmds.push(`link set p${i} master br0`);
      bridgeCmds.push(`link set p${i} up`);
    });
    execFileSync('ip', ['-n', this.bridgeNs, '-batch', '-'], { input: bridgeCmds.join('\n') + '\n', stdio: ['pipe', 'pipe', 'pipe'] });
    for (const n of nodes) {
      const cmds = [
        'link set lo up',
        `addr add ${n.address}/16 dev ${n.ifname}`,
        `link set ${n.ifname} up`,
        // Multicast (the uftp baseline) leaves through the veth.
        `route add 224.0.0.0/4 dev ${n.ifname}`,
      ];
      execFileSync('ip', ['-n', n.ns, '-batch', '-'], { input: cmds.join('\n') + '\n', stdio: ['pipe', 'pipe', 'pipe'] });
      // Per-namespace where the kernel scopes these; harmless otherwise.
      spawnSync('ip', ['netns', 'exec', n.ns, 'sysctl', '-q', '-w', `net.core.rmem_max=${bufMax}`, `net.core.wmem_max=${bufMax}`], { stdio: 'ignore' });
    }
  }

  /** Argv that runs `argv` inside namespace `ns`. */
  static nsArgv(ns: string, argv: string[]): string[] {
    return ['ip', 'netns', 'exec', ns, ...argv];
  }

  /** Starts `argv` in `ns`; the process is killed by destroy() if still running. */
  spawn(ns: string, argv: string[], options: RunOptions = {}): NsProcess {
    const p = new NsProcess(Testbed.nsArgv(ns, argv), options);
    liveProcesses.add(p);
    void p.wait().then(() => liveProcesses.delete(p));
    return p;
  }

  /** Runs `argv` in `ns` to completion (default timeout 60 s). */
  run(ns: string, argv: string[], options: RunOptions = {}): Promise<ExecResult> {
    return this.spawn(ns, argv, { timeoutMs: 60_000, ...options }).wait();
  }

  /** Like run() but throws with the output on a non-zero exit. */
  async runOk(ns: string, argv: string[], options: RunOptions = {}): Promise<ExecResult> {
    const r = await this.run(ns, argv, options);
    if (r.code !== 0) {
      throw new Error(`${argv.join(' ')} in ${ns} exited ${r.code ?? r.signal}: ${r.stderr.slice(-2000)}`);
    }
    return r;
  }

  /**
   * Drops `pct`% of matching datagrams at `ns`'s input hook (replaces any
   * earlier rule of this harness in that namespace).
   */
  async addLoss(ns: string, pct: number, options: LossOptions = {}): Promise<void> {
    if (!(pct >= 0 && pct <= 100)) throw new RangeError(`loss ${pct}% out of range`);
    await this.removeLoss(ns);
    const match: string[] = [];
    if (options.tcpOnly) {
      match.push('meta l4proto tcp');
      if (options.tcpSourcePort !== undefined) match.push(`tcp sport ${options.tcpSourcePort}`);
    } else if (options.udpOnly !== false || options.exceptSourcePorts || options.destinationPort !== undefined || options.minUdpLength !== undefined) {
      match.push('meta l4proto udp');
    }
    if (options.exceptSourcePorts && options.exceptSourcePorts.length > 0) {
      match.push(`udp sport != { ${options.exceptSourcePorts.join(', ')} }`);
    }
    if (options.destinationPort !== undefined) match.push(`udp dport ${options.destinationPort}`);
    if (options.minUdpLength !== undefined) match.push(`udp length > ${options.minUdpLength}`);
    const m = match.join(' ');
    // Two rules: a counter of candidates, then the random drop with its own
    // counter, so tests can read the realised loss rate.
    const script = [
      `add table inet ${LOSS_TABLE}`,
      `add chain inet ${LOSS_TABLE} input { type filter hook input priority 0 ; policy accept ; }`,
      `add rule inet ${LOSS_TABLE} input ${m} counter comment "seen"`,
      `add rule inet ${LOSS_TABLE} input ${m} numgen random mod 100 < ${Math.round(pct)} counter drop comment "dropped"`,
    ].join('\n');
    await this.runOk(ns, ['nft', '-f', '-'], { input: script + '\n' });
  }

  async removeLoss(ns: string): Promise<void> {
    await this.run(ns, ['nft', 'delete', 'table', 'inet', LOSS_TABLE]);
  }

  async lossCounters(ns: string): Promise<LossCounters> {
    const r = await this.runOk(ns, ['nft', 'list', 'table', 'inet', LOSS_TABLE]);
    const read = (tag: string): number => {
      const m = new RegExp(`counter packets (\\d+) bytes \\d+[^\\n]*comment "${tag}"`).exec(r.stdout);
      if (!m) throw new Error(`no ${tag} counter in: ${r.stdout}`);
      return Number(m[1]);
    };
    return { seen: read('seen'), dropped: read('dropped') };
  }

  /** The loss counters of every node in `nodes`, summed (the realised loss over all of them). */
  async totalLossCounters(nodes: NsNode[]): Promise<LossCounters> {
    const total: LossCounters = { seen: 0, dropped: 0 };
    for (const n of nodes) {
      const k = await this.lossCounters(n.ns);
      total.seen += k.seen;
      total.dropped += k.dropped;
    }
    return total;
  }

  /**
   * Counts packets/bytes (IP length) matching `match` (an nftables
   * expression, e.g. `ip saddr 10.200.0.1 meta l4proto udp`) on `hook` of
   * `ns`, under `name`. Several counters may share a namespace.
   */
  async addCounter(ns: string, name: string, hook: 'input' | 'output', match: string): Promise<void> {
    await this.addNamedRule(ns, COUNTERS, name, hook, match);
  }

  /** Every counter of addCounter() in `ns`, by name. */
  async readCounters(ns: string): Promise<Record<string, { packets: number; bytes: number }>> {
    return this.readNamedRules(ns, COUNTERS);
  }

  async removeCounters(ns: string): Promise<void> {
    await this.run(ns, ['nft', 'delete', 'table', 'inet', COUNTERS.table]);
  }

  /**
   * Drops every packet matching `match` (an nftables expression, e.g.
   * `ip daddr 239.1.2.3`) on `hook` of `ns`, counting them under `name`.
   * Several drop rules may share a namespace; removeDrops() lifts them all.
   * (addLoss() is the random drop; this one takes everything it matches.)
   */
  async addDrop(ns: string, name: string, hook: 'input' | 'output', match: string): Promise<void> {
    await this.addNamedRule(ns, DROPS, name, hook, match);
  }

  /** What each addDrop() rule of `ns` has dropped, by name. */
  async readDrops(ns: string): Promise<Record<string, { packets: number; bytes: number }>> {
    return this.readNamedRules(ns, DROPS);
  }

  async removeDrops(ns: string): Promise<void> {
    await this.run(ns, ['nft', 'delete', 'table', 'inet', DROPS.table]);
  }

  /**
   * Gives every node an IPv6 address (SERVER_ADDRESS6, clientAddress6(i))
   * beside its IPv4 one, without duplicate address detection (each address
   * is unique by construction, and DAD would hold it tentative, unusable as
   * a source, for a second or two). Multicast needs no route: the kernel
   * gives every interface ff00::/8 in its local table.
   */
  async enableIPv6(): Promise<void> {
    const nodes: Array<[NsNode, string]> = [[this.server, SERVER_ADDRESS6], ...this.clients.map((c, i): [NsNode, string] => [c, clientAddress6(i)])];
    for (const [n, address] of nodes) {
      if (n.address6 !== undefined) continue;
      await this.runOk(n.ns, ['sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=0', `net.ipv6.conf.${n.ifname}.disable_ipv6=0`]);
      await this.runOk(n.ns, ['ip', 'addr', 'add', `${address}/64`, 'dev', n.ifname, 'nodad']);
      n.address6 = address;
    }
  }

  /**
   * Makes `node`'s interface a member of `group` with no socket at all
   * (`ip address add GROUP autojoin`, IFA_F_MCAUTOJOIN): the kernel then
   * takes the group's packets in (its input hook and counters see them) and
   * drops them for want of a socket. A passive listener whose membership
   * lasts as long as the namespace.
   */
  async joinGroupStatically(node: NsNode, group: string): Promise<void> {
    const prefix = group.includes(':') ? 128 : 32;
    await this.runOk(node.ns, ['ip', 'addr', 'add', `${group}/${prefix}`, 'dev', node.ifname, 'autojoin']);
  }

  /** `node`'s interface counters now (the kernel's, /sys/class/net/IF/statistics). */
  async interfaceCounters(node: NsNode): Promise<InterfaceCounters> {
    const dir = `/sys/class/net/${node.ifname}/statistics`;
    const r = await this.runOk(node.ns, ['cat', `${dir}/tx_bytes`, `${dir}/tx_packets`, `${dir}/rx_bytes`, `${dir}/rx_packets`]);
    const [txBytes, txPackets, rxBytes, rxPackets] = r.stdout.trim().split(/\s+/).map(Number);
    return { txBytes, txPackets, rxBytes, rxPackets };
  }

  /** Adds `MATCH ACTION comment "NAME"` on `hook` of `ns`, in the table of `rules`. */
  private async addNamedRule(ns: string, rules: NamedRules, name: string, hook: 'input' | 'output', match: string): Promise<void> {
    if (!/^[a-z0-9_-]+$/i.test(name)) throw new Error(`bad ${rules.what} name ${name}`);
    const script = [
      `add table inet ${rules.table}`,
      `add chain inet ${rules.table} ${hook} { type filter hook ${hook} priority ${rules.priority} ; policy accept ; }`,
      `add rule inet ${rules.table} ${hook} ${match} ${rules.action} comment "${name}"`,
    ].join('\n');
    await this.runOk(ns, ['nft', '-f', '-'], { input: script + '\n' });
  }

  /** The packets and bytes each rule of the table of `rules` in `ns` has counted, by name. */
  private async readNamedRules(ns: string, rules: NamedRules): Promise<Record<string, { packets: number; bytes: number }>> {
    const r = await this.runOk(ns, ['nft', 'list', 'table', 'inet', rules.table]);
    const out: Record<string, { packets: number; bytes: number }> = {};
    for (const m of r.stdout.matchAll(/counter packets (\d+) bytes (\d+)[^\n]*comment "([^"]+)"/g)) {
      out[m[3]] = { packets: Number(m[1]), bytes: Number(m[2]) };
    }
    return out;
  }

  /** Kills every process started here and deletes every namespace. Idempotent. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const p of liveProcesses) {
      const spawnedHere = p.child.spawnargs.includes(this.bridgeNs) || p.child.spawnargs.some((a) => a.startsWith(`${this.id}-`));
      if (spawnedHere) p.kill('SIGKILL');
    }
    for (const ns of [this.bridgeNs, this.server.ns, ...this.clients.map((c) => c.ns)]) {
      if (created.has(ns)) {
        deleteNamespaceSync(ns);
        created.delete(ns);
      }
    }
  }
}

/** Namespaces of this harness that currently exist (for leak checks). */
export function listOurNamespaces(): string[] {
  return ipSync(['netns', 'list'])
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter((n) => n.startsWith(`${NAME_PREFIX}${process.pid}-`));
}
