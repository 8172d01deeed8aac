/**
 * Fleet economics: one working day's trace through the product's fleet policy (warm buffer 0, 1, 2, 4) and through
 * the peers' policies, in the same run. Output: instance-hours, p50/p95 wait for capacity, peak instances; which
 * peer each of our points dominates (no worse on both axes, better on one) or is dominated by; an SVG frontier.
 */
import { DEFAULT_FLEET, DEFAULTS } from "../../components/config/defaults";
import type { Ec2FleetConfig } from "../../runtime/config";
import { PASS_BUDGET_SECONDS, PASS_SECONDS } from "../../runtime/fleet/lambda";
import { frontierSvg, type ChartPoint } from "./chart";
import { agentScaler, ephemeralRunners, staticFleet } from "./peers";
import { simulateProduct, type ProductRun } from "./product";
import { simulate, type SimulationResult } from "./simulate";
import { generateTrace, WORKDAY, type WorkloadSpec } from "./workload";

export const BUFFERS = [0, 1, 2, 4] as const;

/** EventBridge `rate(n unit)` in seconds (the fleet manager's schedule). */
export function rateSeconds(expression: string): number {
  const m = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/.exec(expression);
  if (!m) throw new Error(`cannot read the period of schedule '${expression}': expected rate(<n> <unit>)`);
  const unit = m[2].startsWith("minute") ? 60 : m[2].startsWith("hour") ? 3600 : 86400;
  return Number(m[1]) * unit;
}

/** The product's default fleet settings, as the stack config fills them in. */
export const PRODUCT_DEFAULTS = {
  warmBuffer: DEFAULT_FLEET.warmBuffer,
  scheduleSeconds: rateSeconds(DEFAULTS.fleetManagerSchedule),
};

/** A fleet's runtime settings as index.ts hands them to the fleet manager, with the stack's defaults. */
export function fleetSettings(over: Partial<Ec2FleetConfig> = {}): Ec2FleetConfig {
  return {
    warmBuffer: DEFAULT_FLEET.warmBuffer,
    readyDeadlineSeconds: DEFAULT_FLEET.readyDeadlineSeconds,
    scaleInIdleSeconds: DEFAULT_FLEET.scaleInIdleSeconds,
    maxInstanceLifetimeSeconds: DEFAULT_FLEET.maxInstanceLifetimeSeconds,
    ...over,
  };
}

/** The policy before the scale-in grace existed: an idle instance beyond the buffer was drained at the next pass. */
export const NO_GRACE_POLICY = "agent-compute, scale-in at once (before the idle grace)";

export interface Dominance {
  ours: string;
  peer: string;
  verdict: "ours dominates" | "peer dominates" | "trade-off";
}

export interface FleetEconomics {
  workload: { tasks: number; seed: number; peakConcurrency: number; firstArrival: number; lastArrival: number; durationMedian: number; durationP95: number };
  /** Seconds between the fleet manager's scheduled invocations, and between its passes within one. */
  scheduleSeconds: number;
  passSeconds: number;
  passBudgetSeconds: number;
  scaleInIdleSeconds: number;
  /** The stack's default warm buffer: the point the static fleet is sized against. */
  defaultBuffer: number;
  ours: ProductRun[];
  /** The same code with scaleInIdleSeconds 0: what the fleet did before the grace. */
  oursNoGrace: ProductRun[];
  peers: SimulationResult[];
  staticSizedFor: { p95Target: number; size: number };
  dominance: Dominance[];
}

function label(r: SimulationResult): string {
  return r.buffer !== undefined ? `${r.policy} (buffer ${r.buffer})` : r.policy;
}

/** a dominates b: no worse on both axes (instance-hours, p95 wait) and strictly better on one. */
export function dominates(a: SimulationResult, b: SimulationResult): boolean {
  const eps = 1e-9;
  const noWorse = a.instanceHours <= b.instanceHours + eps && a.waitP95 <= b.waitP95 + eps;
  const better = a.instanceHours < b.instanceHours - eps || a.waitP95 < b.waitP95 - eps;
  return noWorse && better;
}

function peakConcurrency(trace: ReturnType<typeof generateTrace>): number {
  const edges = trace.flatMap((t) => [
    { t: t.arrival, d: 1 },
    { t: t.arrival + t.duration, d: -1 },
  ]);
  edges.sort((a, b) => a.t - b.t || a.d - b.d);
  let cur = 0;
  let peak = 0;
  for (const e of edges) peak = Math.max(peak, (cur += e.d));
  return peak;
}

export async function runFleetEconomics(spec: WorkloadSpec = WORKDAY): Promise<FleetEconomics> {
  const trace = generateTrace(spec);
  const scheduleSeconds = PRODUCT_DEFAULTS.scheduleSeconds;
  const ours: ProductRun[] = [];
  const oursNoGrace: ProductRun[] = [];
  for (const buffer of BUFFERS) {
    ours.push(await simulateProduct(trace, { settings: fleetSettings({ warmBuffer: buffer }), maxSize: trace.length, scheduleSeconds }, spec));
    oursNoGrace.push(
      await simulateProduct(trace, { name: NO_GRACE_POLICY, settings: fleetSettings({ warmBuffer: buffer, scaleInIdleSeconds: 0 }), maxSize: trace.length, scheduleSeconds }, spec),
    );
  }

  // The static fleet is sized for the p95 wait of our default configuration: the smallest fleet that waits no longer.
  const target = ours.find((r) => r.buffer === PRODUCT_DEFAULTS.warmBuffer)!.waitP95;
  let lo = 1;
  let hi = Math.max(1, trace.length);
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (simulate(trace, staticFleet(mid), spec).waitP95 <= target) hi = mid;
    else lo = mid + 1;
  }
  const peers = [
    { ...simulate(trace, staticFleet(lo), spec), policy: `static fleet of ${lo}` },
    simulate(trace, ephemeralRunners(), spec),
    ...BUFFERS.map((buffer) => simulate(trace, agentScaler(buffer), spec)),
  ];

  const dominance: Dominance[] = [];
  for (const o of [...ours, ...oursNoGrace]) {
    for (const p of peers) {
      const verdict = dominates(o, p) ? "ours dominates" : dominates(p, o) ? "peer dominates" : "trade-off";
      dominance.push({ ours: label(o), peer: label(p), verdict });
    }
  }

  const sortedDurations = trace.map((t) => t.duration).sort((a, b) => a - b);
  return {
    workload: {
      tasks: trace.length,
      seed: spec.seed,
      peakConcurrency: peakConcurrency(trace),
      firstArrival: trace[0]?.arrival ?? 0,
      lastArrival: trace[trace.length - 1]?.arrival ?? 0,
      durationMedian: sortedDurations[Math.floor(sortedDurations.length / 2)] ?? 0,
      durationP95: sortedDurations[Math.ceil(sortedDurations.length * 0.95) - 1] ?? 0,
    },
    scheduleSeconds,
    passSeconds: PASS_SECONDS,
    passBudgetSeconds: PASS_BUDGET_SECONDS,
    scaleInIdleSeconds: DEFAULT_FLEET.scaleInIdleSeconds,
    defaultBuffer: PRODUCT_DEFAULTS.warmBuffer,
    ours,
    oursNoGrace,
    peers,
    staticSizedFor: { p95Target: target, size: lo },
    dominance,
  };
}

/** The frontier chart of a run: one point per policy and buffer. */
export function fleetChart(e: FleetEconomics): string {
  const points: ChartPoint[] = [...e.ours, ...e.oursNoGrace, ...e.peers].map((r) => ({
    series: r.policy.startsWith("static fleet") ? "static fleet (sized for our p95)" : r.policy,
    label: r.buffer !== undefined ? `b=${r.buffer}` : r.policy.startsWith("static") ? r.policy.replace("static fleet of ", "n=") : "",
    x: r.instanceHours,
    y: r.waitP95,
  }));
  return frontierSvg(points, `Fleet frontier: one working day, ${e.workload.tasks} tasks (seed ${e.workload.seed})`, "instance-hours (log scale)", "p95 wait for capacity (s)");
}
