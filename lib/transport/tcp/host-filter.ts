/**
 * The host filter of the TCP transport: one nftables table that keeps the
 * host's own TCP stack from seeing the segments of rqcast's connections.
 *
 * Why: the native server reads the clients' segments with an AF_PACKET
 * socket, which gets a copy before netfilter's input hook; the kernel's
 * stack would get the original too and, finding no socket on the port,
 * answer every SYN with a RST. One drop rule on the input hook for
 * `ip daddr A tcp dport P` (any address when A is 0.0.0.0) removes the
 * original and leaves the copy (docs/ARCHITECTURE.md, TCP).
 *
 * The table is `inet rqcast_tcp_<port>`, one per port. install() replaces
 * a table of that name in the same nft transaction (declare, delete,
 * create), so that a server killed with SIGKILL, which could not remove
 * its table, leaves nothing in the way of the next start; remove() deletes
 * it and is idempotent. Needs the `nft` binary and CAP_NET_ADMIN: each
 * missing one is its own typed error, so the server can say which.
 */
import { execFile } from 'node:child_process';
import { isIPv4 } from 'node:net';
import { RqcastError } from '../../errors';

export class HostFilterError extends RqcastError {
  static readonly code: string = 'ERR_RQ_TCP_FILTER';
  constructor(message: string, options?: { cause?: unknown }, code = HostFilterError.code) {
    super(code, message, options);
  }
}

/** No `nft` binary: nftables is not installed (or not on PATH). */
export class NftMissingError extends HostFilterError {
  static override readonly code = 'ERR_RQ_TCP_NO_NFT';
  constructor(options?: { cause?: unknown }) {
    super('the TCP transport needs nftables: no `nft` binary found (install the nftables package)', options, NftMissingError.code);
  }
}

/** The kernel refused the rule set: the server lacks CAP_NET_ADMIN. */
export class NftPermissionError extends HostFilterError {
  static override readonly code = 'ERR_RQ_TCP_FILTER_PERMISSION';
  constructor(options?: { cause?: unknown }) {
    super('the TCP transport needs CAP_NET_ADMIN to install its nftables rule (run as root, or grant the capability)', options, NftPermissionError.code);
  }
}

/** What the TCP server transport needs of a host filter (tests pass a fake). */
export interface HostFilterLike {
  install(): Promise<void>;
  remove(): Promise<void>;
}

export interface HostFilterOptions {
  /** Numeric IPv4 the clients connect to; '0.0.0.0' = every local address. */
  address: string;
  /** 1..65535. */
  port: number;
  /** The nft command as argv (default ['nft']); tests run it inside a namespace. */
  nft?: readonly string[];
}

/** The table's name for `port`. */
export function hostFilterTable(port: number): string {
  return `rqcast_tcp_${port}`;
}

/**
 * The rule set install() loads, as one nft transaction: declaring the table
 * first makes the delete succeed whether or not a stale one exists.
 * Priority -300 (raw): before any filter chain that could accept first —
 * a drop in any base chain is final, but an earlier chain must not see our
 * segments as anything else either.
 */
export function hostFilterRuleset(address: string, port: number): string {
  const table = `inet ${hostFilterTable(port)}`;
  const daddr = address === '0.0.0.0' ? '' : `ip daddr ${address} `;
  return [
    `table ${table}`,
    `delete table ${table}`,
    `table ${table} {`,
    '  chain input {',
    '    type filter hook input priority -300; policy accept;',
    `    ${daddr}tcp dport ${port} counter drop`,
    '  }',
    '}',
    '',
  ].join('\n');
}

export class HostFilter implements HostFilterLike {
  private readonly nft: readonly string[];

  constructor(private readonly o: HostFilterOptions) {
    if (!isIPv4(o.address)) throw new HostFilterError('the TCP transport is IPv4 only: the address must be a numeric IPv4 address');
    if (!Number.isInteger(o.port) || o.port < 1 || o.port > 0xffff) throw new HostFilterError('the TCP port must be 1..65535');
    this.nft = o.nft ?? ['nft'];
  }

  get table(): string {
    return hostFilterTable(this.o.port);
  }

  /** Installs the drop rule, replacing a table of the same name left by a killed server. */
  async install(): Promise<void> {
    await this.run(['-f', '-'], hostFilterRuleset(this.o.address, this.o.port));
  }

  /** Removes the table; nothing to do if it is gone already. */
  async remove(): Promise<void> {
    try {
      await this.run(['delete', 'table', 'inet', this.table]);
    } catch (e) {
      if (e instanceof HostFilterError && /No such file or directory/.test(e.message)) return;
      throw e;
    }
  }

  private run(args: string[], input?: string): Promise<void> {
    const [file, ...pre] = this.nft;
    return new Promise<void>((resolve, reject) => {
      const child = execFile(file, [...pre, ...args], { encoding: 'utf8', timeout: 10_000 }, (err, _stdout, stderr) => {
        if (!err) return resolve();
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return reject(new NftMissingError({ cause: err }));
        const text = String(stderr).trim();
        if (/Operation not permitted|you must be root/.test(text)) return reject(new NftPermissionError({ cause: err }));
        reject(new HostFilterError(`nft failed: ${text.split('\n')[0] || err.message}`, { cause: err }));
      });
      if (input !== undefined) child.stdin?.end(input);
      else child.stdin?.end();
    });
  }
}
