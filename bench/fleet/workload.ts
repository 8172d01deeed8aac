/**
 * The fleet-economics workload: one working day of tasks, drawn from a seed. Arrivals mix a steady trickle over
 * working hours with a morning and an afternoon burst; agent run times are lognormal (median 12 min, p95 90 min);
 * each instance the fleet launches takes 60–180 s to boot (drawn per launch by the simulation, from the same seed).
 */
import { seededRng } from "./rng";

export interface TraceTask {
  id: string;
  /** Seconds since midnight. */
  arrival: number;
  /** Seconds the agent runs once it has an instance. */
  duration: number;
}

export interface WorkloadSpec {
  tasks: number;
  seed: number;
  /** Share of tasks in each part of the day (they sum to 1). */
  mix: { steady: number; morning: number; afternoon: number };
  /** Working hours of the steady trickle, seconds since midnight. */
  workday: { start: number; end: number };
  morning: { peak: number; sd: number };
  afternoon: { peak: number; sd: number };
  duration: { median: number; p95: number };
  boot: { min: number; max: number };
}

const HOUR = 3600;

export const WORKDAY: WorkloadSpec = {
  tasks: 1000,
  seed: 20261129,
  mix: { steady: 0.3, morning: 0.4, afternoon: 0.3 },
  workday: { start: 8 * HOUR, end: 19 * HOUR },
  morning: { peak: 10 * HOUR, sd: 0.75 * HOUR },
  afternoon: { peak: 14.5 * HOUR, sd: 1 * HOUR },
  duration: { median: 12 * 60, p95: 90 * 60 },
  boot: { min: 60, max: 180 },
};

export function generateTrace(spec: WorkloadSpec = WORKDAY): TraceTask[] {
  const rng = seededRng(spec.seed);
  const { start, end } = spec.workday;
  const arrival = (): number => {
    const u = rng.next();
    let t: number;
    if (u < spec.mix.steady) t = rng.uniform(start, end);
    else if (u < spec.mix.steady + spec.mix.morning) t = rng.normal(spec.morning.peak, spec.morning.sd);
    else t = rng.normal(spec.afternoon.peak, spec.afternoon.sd);
    return Math.min(end, Math.max(start, t));
  };
  const tasks: TraceTask[] = [];
  for (let i = 0; i < spec.tasks; i++) {
    // Whole seconds, at least a minute of work: the trace reads like a real day's log.
    tasks.push({ id: "", arrival: Math.round(arrival()), duration: Math.max(60, Math.round(rng.lognormal(spec.duration.median, spec.duration.p95))) });
  }
  tasks.sort((a, b) => a.arrival - b.arrival);
  return tasks.map((t, i) => ({ ...t, id: `task-${String(i).padStart(4, "0")}` }));
}
