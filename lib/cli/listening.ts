/**
 * The listening line serve and relay print on stdout once they serve:
 * `listening on HOST:PORT (...)`, or with --json one JSON object whose
 * event, host and port come first, then what the command adds.
 */
import type { ServerAddress } from '../server/server';

/** HOST:PORT as the listening line prints it (IPv6 in brackets); serve and relay print the same. */
export function hostPort(a: ServerAddress): string {
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

/** The listening line: HOST:PORT, then each note in parentheses. */
export function listeningText(address: ServerAddress, notes: readonly string[]): string {
  return `listening on ${hostPort(address)}${notes.map((n) => ` (${n})`).join('')}`;
}

/** The --json listening line: event, host and port, then `fields` in their order. */
export function listeningJson(address: ServerAddress, fields: Record<string, unknown>): string {
  return JSON.stringify({ event: 'listening', host: address.address, port: address.port, ...fields });
}
