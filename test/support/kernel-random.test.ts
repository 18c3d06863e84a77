// kernelRandomBytes: the HELLO's nonce and the loss seed without node:crypto
// (issue 12), from /dev/urandom, and from crypto.randomBytes where that
// cannot be read.
import { kernelRandomBytes, KERNEL_RANDOM_DEVICE } from '../../lib/support/kernel-random';

test('reads the size asked for from the kernel, different each time', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 64; i++) {
    const b = kernelRandomBytes(8);
    expect(b).toHaveLength(8);
    seen.add(b.toString('hex'));
  }
  // 64 draws of 64 bits: a repeat would be a broken source, not bad luck.
  expect(seen.size).toBe(64);
  expect(kernelRandomBytes(0)).toHaveLength(0);
  expect(kernelRandomBytes(4096)).toHaveLength(4096);
});

test('takes its bytes from the device it is given (a file of known bytes stands in for it)', () => {
  // /dev/zero: all zeros, which the crypto fallback would (all but) never give.
  expect(kernelRandomBytes(16, '/dev/zero')).toEqual(Buffer.alloc(16));
  expect(KERNEL_RANDOM_DEVICE).toBe('/dev/urandom');
});

test('falls back to crypto.randomBytes where the device cannot be read', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 16; i++) {
    const b = kernelRandomBytes(8, '/nonexistent/urandom');
    expect(b).toHaveLength(8);
    seen.add(b.toString('hex'));
  }
  expect(seen.size).toBe(16);
});
