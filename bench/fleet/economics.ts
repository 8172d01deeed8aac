/**
 * Fleet economics: one working day's trace through the product's fleet policy (warm buffer 0, 1, 2, 4) and through
 * the peers' policies, in the same run. Output: instance-hours, p50/p95 wait for capacity, peak instances; which
 * peer each of our points dominates (no worse on both axes, better on one) or is dominated by; an SVG frontier.
 */
import { DEFAULT_LIMITS } from "../../runtime/limits";
import { pollCeilingSeconds, pollDelaySeconds } from "../../runtime/orchestrator/await-schedule";
import { DEFAULT_FLEET, DEFAULTS } from "../../components/config/defaults";
import { frontierSvg, type ChartPoint } from "./chart";
import { agentScaler, ephemeralRunners, PULL_MECHANICS, staticFleet } from "./peers";
import { productPolicy, simulate, type Mechanics, type SimulationResult } from "./simulate";
import { generateTrace, WORKDAY, type WorkloadSpec } from "./workload";

export const BUFFERS = [0, 1, 2, 4] as const;

/** EventBridge `rate(n unit)` in seconds (the fleet manager's schedule). */
export function rateSeconds(expression: string): number {
  const m = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/.exec(expression);
  if (!m) throw new Error(`cannot read the period of schedule '${expression}': expected rate(<n> <unit>)`);
  const unit = m[2].startsWith("minute") ? 60 : m[2].startsWith("hour") ? 3600 : 86400;
  return Number(m[1]) * unit;
}

/**
 * The product's capacity mechanics as the code stands: a task without an instance retries its claim at the
 * orchestrator's capacity-wait interval (the poll interval, workflow.ts); a booted instance is capacity once the
 * fleet manager's sync registers it (syncFleet is registerInstance's only caller); a finished task frees its
 * instance when the orchestrator's next poll finalizes it — polls back off from the poll interval to a ceiling
 * (await-schedule.ts) — or earlier if the manager's reconciler sees the task terminal first (planReconcile, run in
 * the simulation). An agent that writes its result to the task store wakes nobody; `wakes` models an agent whose
 * terminal report wakes the orchestrator (the agent channel's result route), which finalizes at once.
 */
export function productMechanics(options: { wakes: boolean } = { wakes: false }): Mechanics {
  const poll = DEFAULT_LIMITS.pollIntervalSeconds;
  const ceiling = pollCeilingSeconds(DEFAULT_LIMITS, poll);
  return {
    claim: { kind: "retry", retrySeconds: poll },
    registration: "manager",
    release: options.wakes ? { kind: "immediate" } : { kind: "poll", firstPollSeconds: poll, delayAfterPoll: (n) => pollDelaySeconds(n, poll, ceiling) },
  };
}

/** The product's default fleet settings, as the stack config fills them in. */
export const PRODUCT_DEFAULTS = {
  warmBuffer: DEFAULT_FLEET.warmBuffer,
  managerLoopSeconds: rateSeconds(DEFAULTS.fleetManagerSchedule),
};

export interface Dominance {
  ours: string;
  peer: string;
  verdict: "ours dominates" | "peer dominates" | "trade-off";
}

export interface FleetEconomics {
  workload: { tasks: number; seed: number; peakConcurrency: number; firstArrival: number; lastArrival: number; durationMedian: number; durationP95: number };
  mechanics: Mechanics;
  managerLoopSeconds: number;
  /** The stack's default warm buffer: the point the static fleet is sized against. */
  defaultBuffer: number;
  ours: SimulationResult[];
  /** Ours with the agent's terminal report waking the orchestrator (the agent channel's result route). */
  oursWakes: SimulationResult[];
  /** Our decision function under pull-style mechanics: what the scaling decision gives once hand-out and wake exist. */
  whatIf: SimulationResult[];
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

export function runFleetEconomics(spec: WorkloadSpec = WORKDAY): FleetEconomics {
  const trace = generateTrace(spec);
  const max = 1000;
  const loop = PRODUCT_DEFAULTS.managerLoopSeconds;
  const mechanics = productMechanics();
  const ours = BUFFERS.map((buffer) => simulate(trace, productPolicy({ buffer, loopSeconds: loop, max, mechanics }), spec));
  const oursWakes = BUFFERS.map((buffer) =>
    simulate(trace, productPolicy({ name: "agent-compute, agent's report wakes", buffer, loopSeconds: loop, max, mechanics: productMechanics({ wakes: true }) }), spec),
  );
  const whatIf = BUFFERS.map((buffer) =>
    simulate(trace, productPolicy({ name: "desiredCapacity with hand-out + wake (not today's code)", buffer, loopSeconds: loop, max, mechanics: PULL_MECHANICS }), spec),
  );

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
  for (const o of [...ours, ...oursWakes, ...whatIf]) {
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
    mechanics,
    managerLoopSeconds: loop,
    defaultBuffer: PRODUCT_DEFAULTS.warmBuffer,
    ours,
    oursWakes,
    whatIf,
    peers,
    staticSizedFor: { p95Target: target, size: lo },
    dominance,
  };
}

/** The frontier chart of a run: one point per policy and buffer. */
export function fleetChart(e: FleetEconomics): string {
  const points: ChartPoint[] = [...e.ours, ...e.oursWakes, ...e.whatIf, ...e.peers].map((r) => ({
    series: r.policy.startsWith("static fleet") ? "static fleet (sized for our p95)" : r.policy,
    label: r.buffer !== undefined ? `b=${r.buffer}` : r.policy.startsWith("static") ? r.policy.replace("static fleet of ", "n=") : "",
    x: r.instanceHours,
    y: r.waitP95,
  }));
  return frontierSvg(points, `Fleet frontier: one working day, ${e.workload.tasks} tasks (seed ${e.workload.seed})`, "instance-hours (log scale)", "p95 wait for capacity (s)");
}
