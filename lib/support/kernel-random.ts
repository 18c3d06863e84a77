/**
 * Random bytes straight from the kernel's generator, without node:crypto:
 * a fetch needs a few before its HELLO (the HELLO's nonce, the loss
 * simulation's seed), and loading crypto for them cost about 10 ms of its
 * start-up's CPU (issue 12). /dev/urandom is the kernel's CSPRNG, the one
 * OpenSSL seeds crypto.randomBytes from, so a nonce is as unpredictable to
 * an off-path sender as before (docs/PROTOCOL.md §4.3: what it protects).
 * Where it cannot be read (a chroot without /dev), crypto.randomBytes.
 */
import { closeSync, openSync, readSync } from 'fs';
import { nodeCrypto } from './crypto-when-used';

export const KERNEL_RANDOM_DEVICE = '/dev/urandom';

/** `size` random bytes from `device` (the kernel's generator), else from crypto.randomBytes. */
export function kernelRandomBytes(size: number, device = KERNEL_RANDOM_DEVICE): Buffer {
  const out = Buffer.allocUnsafe(size);
  let fd: number | undefined;
  try {
    fd = openSync(device, 'r');
    for (let at = 0; at < size; ) {
      const n = readSync(fd, out, at, size - at, null);
      if (n <= 0) throw new Error(`${device}: short read`);
      at += n;
    }
    return out;
  } catch {
    return nodeCrypto().randomBytes(size);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
