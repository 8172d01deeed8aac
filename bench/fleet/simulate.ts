/**
 * Discrete-event simulation of one EC2 fleet over a day's trace. The decisions are the product's own, imported:
 * how many instances the group wants (runtime/fleet/scaling `desiredCapacity`), which leases the manager repairs
 * (runtime/fleet/reconcile `planReconcile`, fed the lease table and task statuses it would read), and which
 * instance counts as capacity (runtime/fleet/lease `notReadyReason`, fed the instance as DescribeInstances shows
 * it). What the simulation supplies is the world around them: time, the Auto Scaling group, boots, agents.
 *
 * The claim itself (a DynamoDB transaction) is not run here: with no contention it always binds a ready instance
 * when one exists, so it is modelled by *when* a waiting task tries and *who* gets a freed instance (`Mechanics`).
 * Peers (static fleet, ephemeral runners, agent-scaler) run on the same trace with their own scaling and hand-out.
 */
import type { Instance } from "@aws-sdk/client-ec2";
import type { Lease } from "../../runtime/fleet/lease";
import { notReadyReason } from "../../runtime/fleet/lease-mirror";
import { planReconcile } from "../../runtime/fleet/reconcile";
import { desiredCapacity } from "../../runtime/fleet/scaling";
import { BOOT_READY, BOOT_TAG, FLEET_TAG } from "../../runtime/fleet/tags";
import type { TaskStatus } from "../../runtime/tasks/status";
import { seededRng, type Rng } from "./rng";
import type { TraceTask, WorkloadSpec } from "./workload";

const FLEET = "bench";
/** EC2 per-second billing has a 60-second minimum per launch (Linux). */
const MIN_BILLED_SECONDS = 60;
const DAY = 24 * 3600;

/** How a platform hands capacity to tasks. */
export interface Mechanics {
  /**
   * "retry": a task without an instance tries to claim one again every `retrySeconds` (the orchestrator's
   * capacity loop); any ready instance may be taken. "handout": a freed or newly ready instance goes at once to
   * the oldest waiting task.
   */
  claim: { kind: "retry"; retrySeconds: number } | { kind: "handout" };
  /** A booted instance is capacity once the manager's next pass registers it, or at once. */
  registration: "manager" | "immediate";
  /**
   * When a finished task's instance is free again: at the orchestrator's next poll after the agent's terminal
   * report ("poll"), or at once ("immediate": the report ends the wait).
   */
  release: { kind: "poll"; pollSeconds: number } | { kind: "immediate" };
}

/** What a scaling loop sees on each pass. */
export interface FleetView {
  now: number;
  /** Tasks that want an instance and hold none. */
  queued: number;
  /** Instances running a task. */
  busy: number;
  /** Registered, idle instances. */
  ready: number;
  /** Instances not terminated (booting, ready or busy): the group's current size. */
  live: number;
  desired: number;
}

export interface ScalingPolicy {
  name: string;
  /** Buffer of idle instances this policy keeps, when it has one (a point on the frontier). */
  buffer?: number;
  mechanics: Mechanics;
  /** Seconds between passes of the scaling loop; none for a policy without one. */
  loopSeconds?: number;
  /** Instances already booted and registered at midnight. */
  initialInstances?: number;
  /** The group's desired capacity after a pass (scale-in, if lower, picks unprotected instances). */
  decide?(view: FleetView): number;
  /** Launch one instance per arriving task. */
  launchPerTask?: boolean;
  /** Terminate an instance as soon as its task gives it back (decrementing the group). */
  terminateOnRelease?: boolean;
  /** An idle instance terminates itself (decrementing the group) after this many idle seconds. */
  idleTimeoutSeconds?: number;
  /** Whether the manager's reconciler (planReconcile) runs on each pass. */
  reconcile?: boolean;
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
  bootDoneAt: number;
  booted: boolean;
  registered: boolean;
  registeredAt: number;
  taskId?: string;
  idleSince: number;
  terminatedAt?: number;
}

interface SimTask {
  trace: TraceTask;
  claimedAt?: number;
  instanceId?: string;
  status: TaskStatus;
  finalized: boolean;
}

/** A binary heap of timed events; ties run in the order they were scheduled. */
class Agenda {
  private heap: { t: number; seq: number; run: () => void }[] = [];
  private seq = 0;

  at(t: number, run: () => void): void {
    const h = this.heap;
    h.push({ t, seq: this.seq++, run });
    for (let i = h.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (this.less(h[p], h[i])) break;
      [h[p], h[i]] = [h[i], h[p]];
      i = p;
    }
  }

  pop(): { t: number; run: () => void } | undefined {
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

/** The instance as DescribeInstances would show it, for the product's own readiness check. */
function described(instance: SimInstance): Instance {
  return {
    InstanceId: instance.id,
    State: { Name: instance.terminatedAt === undefined ? "running" : "terminated" },
    Tags: [{ Key: FLEET_TAG, Value: FLEET }, ...(instance.booted ? [{ Key: BOOT_TAG, Value: BOOT_READY }] : [])],
  };
}

export function simulate(trace: readonly TraceTask[], policy: ScalingPolicy, spec: Pick<WorkloadSpec, "boot" | "seed">): SimulationResult {
  // The policy's own stream of boot times and scale-in picks: every policy sees the same trace, and a run is
  // reproducible from the seed alone.
  const rng: Rng = seededRng(spec.seed ^ 0x5eed);
  const agenda = new Agenda();
  const { mechanics } = policy;
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

  const readyInstances = () => [...instances.values()].filter((i) => i.terminatedAt === undefined && i.registered && !i.taskId);

  const launch = (at: number, prebooted: boolean) => {
    const id = `i-${(0x10000000 + seq++).toString(16)}`;
    const boot = prebooted ? 0 : Math.round(rng.uniform(spec.boot.min, spec.boot.max));
    const instance: SimInstance = { id, launchedAt: at, bootDoneAt: at + boot, booted: prebooted, registered: false, registeredAt: 0, idleSince: at };
    instances.set(id, instance);
    live++;
    launches++;
    peak = Math.max(peak, live);
    if (prebooted) register(instance, at);
    else agenda.at(at + boot, () => booted(instance));
  };

  const terminate = (instance: SimInstance, at: number) => {
    if (instance.terminatedAt !== undefined) return;
    instance.terminatedAt = at;
    live--;
  };

  /** The Auto Scaling group converging on `desired`: launch, or terminate unprotected (not busy) instances. */
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
    instance.idleSince = now;
    if (mechanics.registration === "immediate") register(instance, now);
  };

  const register = (instance: SimInstance, at: number) => {
    // The product's own test of what may count as capacity: a running instance of the fleet whose boot finished.
    if (notReadyReason(FLEET, described(instance)) !== undefined) return;
    instance.registered = true;
    instance.registeredAt = at;
    instance.idleSince = at;
    becameFree(instance);
  };

  const bind = (task: SimTask, instance: SimInstance) => {
    task.claimedAt = now;
    task.instanceId = instance.id;
    task.status = "RUNNING";
    instance.taskId = task.trace.id;
    const index = waiting.indexOf(task);
    if (index >= 0) waiting.splice(index, 1);
    agenda.at(now + task.trace.duration, () => agentFinished(task));
  };

  /** An instance is idle and registered: in hand-out mode the oldest waiter gets it at once. */
  const becameFree = (instance: SimInstance) => {
    instance.idleSince = now;
    if (mechanics.claim.kind === "handout" && waiting.length > 0) bind(waiting[0], instance);
    else if (policy.idleTimeoutSeconds !== undefined) {
      const since = now;
      agenda.at(now + policy.idleTimeoutSeconds, () => {
        if (instance.terminatedAt === undefined && !instance.taskId && instance.idleSince === since) {
          terminate(instance, now);
          desired--;
        }
      });
    }
    // The group may be above its desired size only because this instance was protected: now it can go.
    if (live > desired && !instance.taskId) terminate(instance, now);
  };

  const tryClaim = (task: SimTask) => {
    if (task.instanceId) return;
    const ready = readyInstances();
    if (ready.length > 0) return bind(task, rng.pick(ready));
    if (mechanics.claim.kind === "retry") agenda.at(now + mechanics.claim.retrySeconds, () => tryClaim(task));
  };

  const release = (task: SimTask) => {
    const instance = task.instanceId ? instances.get(task.instanceId) : undefined;
    if (!instance || instance.taskId !== task.trace.id) return;
    instance.taskId = undefined;
    if (policy.terminateOnRelease) {
      terminate(instance, now);
      desired--;
      return;
    }
    becameFree(instance);
  };

  let lastFinalized = 0;
  const agentFinished = (task: SimTask) => {
    // The agent's terminal report lands in the task table now; the orchestrator sees it at its next poll.
    task.status = "COMPLETED";
    const claimedAt = task.claimedAt!;
    const finalizeAt =
      mechanics.release.kind === "immediate"
        ? now
        : claimedAt + Math.ceil((now - claimedAt) / mechanics.release.pollSeconds) * mechanics.release.pollSeconds;
    agenda.at(finalizeAt, () => {
      task.finalized = true;
      lastFinalized = Math.max(lastFinalized, now);
      release(task);
    });
  };

  const arrive = (task: SimTask) => {
    task.status = "STARTING";
    waiting.push(task);
    if (policy.launchPerTask) {
      desired++;
      converge(now);
    }
    tryClaim(task);
  };

  /** One pass of the fleet manager: sync (register, drop), reconcile, then scale. */
  const pass = () => {
    const current = [...instances.values()];
    if (mechanics.registration === "manager") {
      for (const instance of current) if (instance.booted && !instance.registered && instance.terminatedAt === undefined) register(instance, now);
    }
    if (policy.reconcile) {
      const leases: Lease[] = current
        .filter((i) => i.registered)
        .map((i) => ({
          instanceId: i.id,
          fleet: FLEET,
          state: i.taskId ? "BUSY" : "READY",
          registeredAt: String(i.registeredAt),
          ...(i.taskId ? { taskId: i.taskId } : {}),
        }));
      const statuses = new Map<string, TaskStatus | undefined>();
      for (const lease of leases) if (lease.taskId) statuses.set(lease.taskId, tasks.get(lease.taskId)?.status);
      const running = new Set(current.filter((i) => i.terminatedAt === undefined && i.booted).map((i) => i.id));
      for (const action of planReconcile({ leases, tasks: statuses, runningInstanceIds: running })) {
        const instance = instances.get(action.instanceId)!;
        if (action.kind === "drop-instance") instance.registered = false;
        else release(tasks.get(action.taskId)!);
      }
    }
    if (policy.decide) {
      const alive = [...instances.values()].filter((i) => i.terminatedAt === undefined);
      const busy = alive.filter((i) => i.taskId).length;
      const ready = alive.filter((i) => i.registered && !i.taskId).length;
      desired = policy.decide({ now, queued: waiting.length, busy, ready, live, desired });
      converge(now);
    }
  };

  for (const t of trace) {
    const task: SimTask = { trace: t, status: "SUBMITTED", finalized: false };
    tasks.set(t.id, task);
    agenda.at(t.arrival, () => arrive(task));
  }
  if (policy.initialInstances) {
    desired = policy.initialInstances;
    for (let i = 0; i < policy.initialInstances; i++) launch(0, true);
  }
  if (policy.loopSeconds) {
    const loop = policy.loopSeconds;
    const tick = () => {
      pass();
      // Keep deciding through the day and until the last task is finished.
      if (now < DAY || [...tasks.values()].some((t) => !t.finalized)) agenda.at(now + loop, tick);
    };
    agenda.at(0, tick);
  }

  for (let e = agenda.pop(); e; e = agenda.pop()) {
    now = e.t;
    e.run();
  }

  // Every policy is billed over the same window: the day, or longer if a task ran past midnight. An instance
  // still up at the end (a static fleet, a warm buffer) is billed to the end of the window.
  const horizon = Math.max(DAY, lastFinalized);
  let billed = 0;
  for (const i of instances.values()) billed += Math.max(MIN_BILLED_SECONDS, (i.terminatedAt ?? horizon) - i.launchedAt);
  const waits = [...tasks.values()].map((t) => {
    if (t.claimedAt === undefined) throw new Error(`${policy.name}: task ${t.trace.id} never got an instance`);
    return t.claimedAt - t.trace.arrival;
  });
  waits.sort((a, b) => a - b);
  return {
    policy: policy.name,
    ...(policy.buffer !== undefined ? { buffer: policy.buffer } : {}),
    tasks: waits.length,
    instanceHours: billed / 3600,
    waitP50: percentile(waits, 50),
    waitP95: percentile(waits, 95),
    waitMax: waits[waits.length - 1] ?? 0,
    peakInstances: peak,
    launches,
    horizon,
  };
}

/** The product's policy with today's mechanics: `desiredCapacity` on each manager pass, reconciler included. */
export function productPolicy(options: { buffer: number; loopSeconds: number; max: number; mechanics: Mechanics; name?: string }): ScalingPolicy {
  return {
    name: options.name ?? "agent-compute",
    buffer: options.buffer,
    mechanics: options.mechanics,
    loopSeconds: options.loopSeconds,
    reconcile: true,
    decide: (v) => desiredCapacity({ queued: v.queued, busy: v.busy, ready: v.ready, warmBuffer: options.buffer, min: 0, max: options.max }),
  };
}
