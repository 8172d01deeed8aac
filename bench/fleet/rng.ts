/**
 * A small seeded random source, so that a bench run is reproducible: the same seed gives the same workload and
 * the same choices everywhere (mulberry32: 32-bit state, good enough to draw a workload, not for secrets).
 */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  uniform(min: number, max: number): number;
  /** Standard normal (Box–Muller). */
  normal(mean?: number, sd?: number): number;
  /** Lognormal with the given median and 95th percentile. */
  lognormal(median: number, p95: number): number;
  /** One element, uniformly. */
  pick<T>(items: readonly T[]): T;
}

/** z of the 95th percentile of the standard normal. */
const Z95 = 1.6448536269514722;

export function seededRng(seed: number): Rng {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const normal = (mean = 0, sd = 1): number => {
    const u = 1 - next();
    const v = next();
    return mean + sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
  return {
    next,
    uniform: (min, max) => min + (max - min) * next(),
    normal,
    lognormal: (median, p95) => Math.exp(normal(Math.log(median), Math.log(p95 / median) / Z95)),
    pick: (items) => items[Math.floor(next() * items.length)],
  };
}
