/**
 * A duration in milliseconds as people read it in a message: "150 ms"
 * below a second, else seconds with at most one decimal ("1 s", "2.5 s").
 * A timeout of 150 ms used to be reported as "for 0 s".
 */
export function durationText(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return `${ms} ms`;
  // Rounded first, so that 999.6 ms reads "1 s", not "1000 ms".
  const whole = Math.round(ms);
  if (whole < 1000) return `${whole} ms`;
  return `${Math.round(ms / 100) / 10} s`;
}
