/**
 * The GF(256) kernel the codec uses (RFC 6330 §5.7 arithmetic on symbols).
 * The best one the CPU offers is chosen at load time; tests and benchmarks
 * can switch. The switch is process-wide: do not change it while encodes
 * or decodes run on worker threads.
 */
import { callNative } from './errors';
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

/** Time the codec spent in each half of its work, process-wide (all threads). */
export interface CodecPhaseCounters {
  /** Solver on the coefficient matrix (RFC 6330 §5.4.2), in nanoseconds. */
  solverNs: number;
  /** Arithmetic on symbols (replayed row operations, regenerated source symbols), in nanoseconds. */
  symbolNs: number;
  /** Solver runs (one per decode, one per new K' on encode). */
  solves: number;
  /** Symbol replays (one per encoded or decoded block). */
  replays: number;
}

interface PhaseCounterBinding {
  codecPhaseCounters(reset: boolean): CodecPhaseCounters;
}

/**
 * Reads the codec's phase counters (benchmarks: solver vs symbol-arithmetic
 * split); `reset` zeroes them after reading. Repair-symbol generation for
 * packets is not included (it is per packet, not per block).
 */
export function codecPhaseCounters(reset = false): CodecPhaseCounters {
  const raw = loadNative() as unknown as PhaseCounterBinding;
  return raw.codecPhaseCounters(reset);
}
