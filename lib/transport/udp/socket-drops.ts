/**
 * Datagrams the kernel dropped at a UDP socket because its receive buffer
 * was full, read from /proc/net/udp or /proc/net/udp6 (the `drops` column,
 * the socket's sk_drops). Node's dgram gives no file descriptor, so the
 * socket is found by its local address and port, which only it holds (the
 * server binds without SO_REUSEADDR). The file is the network namespace's
 * own. Undefined where there is no such file (not Linux) or no such line.
 */
import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { normalizeAddress } from '../../support/address';

/** /proc/net/udp{,6}'s form of a local address: each 32-bit word in host (little-endian) byte order, hex. */
export function procNetAddress(address: string, port: number, family: 'IPv4' | 'IPv6'): string {
  const bytes = normalizeAddress(address).bytes;
  const words = family === 'IPv4' ? [bytes.subarray(12, 16)] : [0, 4, 8, 12].map((i) => bytes.subarray(i, i + 4));
  const hex = words.map((w) => Array.from(w).reverse().map((b) => b.toString(16).padStart(2, '0')).join('')).join('');
  return `${hex.toUpperCase()}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** The drop count of the UDP socket bound to (address, port), or undefined. */
export function udpSocketDrops(address: string, port: number, family: 'IPv4' | 'IPv6' = isIPv6(address) ? 'IPv6' : 'IPv4', procRoot = '/proc'): number | undefined {
  let text: string;
  try {
    text = readFileSync(`${procRoot}/net/${family === 'IPv6' ? 'udp6' : 'udp'}`, 'utf8');
  } catch {
    return undefined;
  }
  const local = procNetAddress(address, port, family);
  for (const line of text.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
    if (cols.length >= 13 && cols[1] === local) {
      const drops = Number(cols[12]);
      return Number.isFinite(drops) ? drops : undefined;
    }
  }
  return undefined;
}
