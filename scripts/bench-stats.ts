/** What the benchmark scripts write their timings with. */

/** The p-quantile (0..1) of xs, by the nearest rank below. */
export function q(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
}

export const ms = (x: number): string => `${x.toFixed(1)} ms`;
