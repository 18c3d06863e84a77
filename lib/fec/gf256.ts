/**
 * The GF(256) kernel the codec uses (RFC 6330 §5.7 arithmetic on symbols).
 * The best one the CPU offers is chosen at load time; tests and benchmarks
 * can switch. The switch is process-wide: do not change it while encodes
 * or decodes run on worker threads.
 */
import { callNative } from '../errors';
import { loadNative } from '../native';

/** Name of the kernel in use: "scalar", "ssse3", "avx2", "avx512", "gfni", "neon". */
export function gf256Kernel(): string {
  return loadNative().gf256Kernel();
}

/** Kernels this CPU can run, best last ("scalar" always first). */
export function gf256Kernels(): string[] {
  return loadNative().gf256Kernels();
}

/** Selects a kernel; throws UnknownKernelError if this CPU cannot run it. */
export function setGf256Kernel(name: string): void {
  callNative(() => loadNative().setGf256Kernel(name));
}
