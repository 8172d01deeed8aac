/**
 * The discrete-event simulation's engine, and the peers' fleets on it. Peers (static fleet, ephemeral runners,
 * agent-scaler) are systems whose runners pull work: an idle runner takes the oldest waiting job the moment it is
 * booted or free, and a finished job frees its runner at once. Our fleet runs on the same clock, billing and boot
 * draws in product.ts, with the product's own decisions.
 */
import { seededRng, type Rng } from "./rng";
import type { TraceTask, WorkloadSpec } from "./workload";

/** EC2 per-second billing has a 60-second minimum per launch (Linux). */
export const MIN_BILLED_SECONDS = 60;
export const DAY = 24 * 3600;

/** What a scaling loop sees on each pass. */
export interface FleetView {
  now: number;
  /** Tasks that want an instance and hold none. */
  queued: number;
  /** Instances running a task. */
  busy: number;
  /** Booted, idle instances. */
  ready: number;
  /** Instances not terminated (booting, ready or busy): the group's current size. */
  live: number;
  desired: number;
}

export interface ScalingPolicy {
  name: string;
  /** Buffer of idle instances this policy keeps, when it has one (a point on the frontier). */
  buffer?: number;
  /** Seconds between passes of the scaling loop; none for a policy without one. */
  loopSeconds?: number;
  /** Instances already booted at midnight. */
  initialInstances?: number;
  /** The group's desired capacity after a pass (scale-in, if lower, picks idle instances). */
  decide?(view: FleetView): number;
  /** Launch one instance per arriving task. */
  launchPerTask?: boolean;
  /** Terminate an instance as soon as its task gives it back (decrementing the group). */
  terminateOnRelease?: boolean;
  /** An idle instance terminates itself (decrementing the group) after this many idle seconds. */
  idleTimeoutSeconds?: number;
}

export interface SimulationResult {
  policy: string;
  buffer?: number;
  tasks: number;
  instanceHours: number;
  waitP50: number;
  waitP95: number;
  waitMax: number;
  peakInstances: number;
  launches: number;
  /** Seconds simulated (a full day, longer if a task ran past midnight). */
  horizon: number;
}

interface SimInstance {
  id: string;
  launchedAt: number;
  booted: boolean;
  taskId?: string;
  idleSince: number;
  terminatedAt?: number;
}

interface SimTask {
  trace: TraceTask;
  claimedAt?: number;
  instanceId?: string;
  finishedAt?: number;
}

/** A binary heap of timed events; ties run in the order they were scheduled. */
export class Agenda<R = void> {
  private heap: { t: number; seq: number; run: () => R }[] = [];
  private seq = 0;

  at(t: number, run: () => R): void {
    const h = this.heap;
    h.push({ t, seq: this.seq++, run });
    for (let i = h.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (this.less(h[p], h[i])) break;
      [h[p], h[i]] = [h[i], h[p]];
      i = p;
    }
  }

  pop(): { t: number; run: () => R } | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l], h[m])) m = l;
        if (r < h.length && this.less(h[r], h[m])) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i], h[m]];
        i = m;
      }
    }
    return top;
  }

  private less(a: { t: number; seq: number }, b: { t: number; seq: number }): boolean {
    return a.t < b.t || (a.t === b.t && a.seq < b.seq);
  }
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil((p / 100) * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))];
}

/**
 * Instance-hours of a run: every launch billed per second with EC2's 60 s minimum, from launch to termination;
 * an instance still up at the end (a static fleet, a warm buffer) is billed to the end of the window.
 */
export function billedHours(instances: readonly { launchedAt: number; terminatedAt?: number }[], horizon: number): number {
  let billed = 0;
  for (const i of instances) billed += Math.max(MIN_BILLED_SECONDS, (i.terminatedAt ?? horizon) - i.launchedAt);
  return billed / 3600;
}

export function summarize(policy: string, buffer: number | undefined, waits: number[], instanceHours: number, peak: number, launches: number, horizon: number): SimulationResult {
  waits.sort((a, b) => a - b);
  return {
    policy,
    ...(buffer !== undefined ? { buffer } : {}),
    tasks: waits.length,
    instanceHours,
    waitP50: percentile(waits, 50),
    waitP95: percentile(waits, 95),
    waitMax: waits[waits.length - 1] ?? 0,
    peakInstances: peak,
    launches,
    horizon,
  };
}

export function simulate(trace: readonly TraceTask[], policy: ScalingPolicy, spec: Pick<WorkloadSpec, "boot" | "seed">): SimulationResult {
  // The policy's own stream of boot times and scale-in picks: every policy sees the same trace, and a run is
  // reproducible from the seed alone.
  const rng: Rng = seededRng(spec.seed ^ 0x5eed);
  const agenda = new Agenda();
  const instances = new Map<string, SimInstance>();
  const tasks = new Map<string, SimTask>();
  /** Tasks waiting for an instance, oldest first. */
  const waiting: SimTask[] = [];
  let desired = 0;
  let live = 0;
  let peak = 0;
  let launches = 0;
  let seq = 0;
  let now = 0;

  const launch = (at: number, prebooted: boolean) => {
    const id = `i-${(0x10000000 + seq++).toString(16)}`;
    const boot = prebooted ? 0 : Math.round(rng.uniform(spec.boot.min, spec.boot.max));
    const instance: SimInstance = { id, launchedAt: at, booted: prebooted, idleSince: at };
    instances.set(id, instance);
    live++;
    launches++;
    peak = Math.max(peak, live);
    if (prebooted) becameFree(instance);
    else agenda.at(at + boot, () => booted(instance));
  };

  const terminate = (instance: SimInstance, at: number) => {
    if (instance.terminatedAt !== undefined) return;
    instance.terminatedAt = at;
    live--;
  };

  /** The Auto Scaling group converging on `desired`: launch, or terminate idle instances (busy ones are protected). */
  const converge = (at: number) => {
    while (live < desired) launch(at, false);
    while (live > desired) {
      const unprotected = [...instances.values()].filter((i) => i.terminatedAt === undefined && !i.taskId);
      if (unprotected.length === 0) break;
      terminate(rng.pick(unprotected), at);
    }
  };

  const booted = (instance: SimInstance) => {
    if (instance.terminatedAt !== undefined) return;
    instance.booted = true;
    becameFree(instance);
  };

  const bind = (task: SimTask, instance: SimInstance) => {
    task.claimedAt = now;
    task.instanceId = instance.id;
    instance.taskId = task.trace.id;
    const index = waiting.indexOf(task);
    if (index >= 0) waiting.splice(index, 1);
    agenda.at(now + task.trace.duration, () => finished(task));
  };

  /** A runner is booted and idle: it takes the oldest waiting job at once, or idles (and may time out). */
  const becameFree = (instance: SimInstance) => {
    instance.idleSince = now;
    if (waiting.length > 0) return bind(waiting[0], instance);
    if (policy.idleTimeoutSeconds !== undefined) {
      const since = now;
      agenda.at(now + policy.idleTimeoutSeconds, () => {
        if (instance.terminatedAt === undefined && !instance.taskId && instance.idleSince === since) {
          terminate(instance, now);
          desired--;
        }
      });
    }
    // The group may be above its desired size only because this instance was protected: now it can go.
    if (live > desired) terminate(instance, now);
  };

  const finished = (task: SimTask) => {
    task.finishedAt = now;
    const instance = instances.get(task.instanceId!)!;
    instance.taskId = undefined;
    if (policy.terminateOnRelease) {
      terminate(instance, now);
      desired--;
      return;
    }
    becameFree(instance);
  };

  const arrive = (task: SimTask) => {
    waiting.push(task);
    if (policy.launchPerTask) {
      desired++;
      converge(now);
    }
    const idle = [...instances.values()].filter((i) => i.terminatedAt === undefined && i.booted && !i.taskId);
    if (idle.length > 0) bind(task, rng.pick(idle));
  };

  const pass = () => {
    const alive = [...instances.values()].filter((i) => i.terminatedAt === undefined);
    const busy = alive.filter((i) => i.taskId).length;
    const ready = alive.filter((i) => i.booted && !i.taskId).length;
    desired = policy.decide!({ now, queued: waiting.length, busy, ready, live, desired });
    converge(now);
  };

  for (const t of trace) {
    const task: SimTask = { trace: t };
    tasks.set(t.id, task);
    agenda.at(t.arrival, () => arrive(task));
  }
  if (policy.initialInstances) {
    desired = policy.initialInstances;
    for (let i = 0; i < policy.initialInstances; i++) launch(0, true);
  }
  if (policy.loopSeconds && policy.decide) {
    const loop = policy.loopSeconds;
    const tick = () => {
      pass();
      // Keep deciding through the day and until the last task is finished.
      if (now < DAY || [...tasks.values()].some((t) => t.finishedAt === undefined)) agenda.at(now + loop, tick);
    };
    agenda.at(0, tick);
  }

  for (let e = agenda.pop(); e; e = agenda.pop()) {
    now = e.t;
    e.run();
  }

  const horizon = Math.max(DAY, ...[...tasks.values()].map((t) => t.finishedAt ?? 0));
  const waits = [...tasks.values()].map((t) => {
    if (t.claimedAt === undefined) throw new Error(`${policy.name}: task ${t.trace.id} never got an instance`);
    return t.claimedAt - t.trace.arrival;
  });
  return summarize(policy.name, policy.buffer, waits, billedHours([...instances.values()], horizon), peak, launches, horizon);
}
