/**
 * Our fleet in the discrete-event simulation. Every decision is the product's own code, imported from runtime/:
 * - the fleet manager's pass: `planReconcile` (leases of finished tasks go back first, as `manageFleets` does)
 *   then `planFleet` (register booted instances, scale out with `desiredCapacity`, scale in by draining idle
 *   READY instances and terminating them through the group), on the manager's own schedule (`PASS_SECONDS`
 *   passes for `PASS_BUDGET_SECONDS` of each scheduled minute);
 * - the claim: a task joins its fleet's queue at `waiterPosition(submitted, id)` and the dispatcher's pairing
 *   (`dispatchRounds`: oldest waiter ↔ oldest ready instance) runs whenever the product kicks it — on a claim,
 *   after a pass registered instances, after a release that left an instance READY while someone waits;
 * - the release: `releaseTarget` says whether the freed instance is offered to the oldest waiter (hand-over),
 *   becomes READY, or drains.
 * What the simulation supplies is the world around them: the clock, the Auto Scaling group, boots, agents, and an
 * in-memory lease table and queue in place of DynamoDB (one process, so the dispatcher's lock is always free).
 * The agent's terminal report reaches the orchestrator through the agent channel, which wakes it: the task is
 * finalized, and its instance released, at the report.
 */
import type { Ec2FleetConfig } from "../../runtime/config";
import { dispatchRounds, MAX_BINDS_PER_HOLDING, type BindOutcome, type PairingTarget } from "../../runtime/fleet/dispatcher";
import { PASS_BUDGET_SECONDS, PASS_SECONDS } from "../../runtime/fleet/lambda";
import { releaseTarget, type Lease } from "../../runtime/fleet/lease";
import { planFleet, type FleetAction, type FleetObservation } from "../../runtime/fleet/plan";
import { planReconcile } from "../../runtime/fleet/reconcile";
import { BOOT_READY } from "../../runtime/fleet/tags";
import { waiterPosition, type Waiter } from "../../runtime/fleet/waiters";
import type { TaskStatus } from "../../runtime/tasks/status";
import { seededRng } from "./rng";
import { Agenda, billedHours, DAY, summarize, type SimulationResult } from "./simulate";
import type { TraceTask, WorkloadSpec } from "./workload";

const FLEET = "bench";
/** Midnight of the simulated day: the product's decisions read ISO timestamps. */
const EPOCH = Date.UTC(2026, 10, 30);
const iso = (t: number) => new Date(EPOCH + t * 1000).toISOString();

export interface ProductOptions {
  name?: string;
  /** The fleet's settings as the stack config gives them (warmBuffer is the frontier's variable). */
  settings: Ec2FleetConfig;
  /** The group's maxSize (high enough never to bind: the day is about the policy, not a cap). */
  maxSize: number;
  /** Seconds between the fleet manager's scheduled invocations (the stack's fleetManagerSchedule). */
  scheduleSeconds: number;
}

interface SimInstance {
  id: string;
  launchedAt: number;
  booted: boolean;
  /** Registered instances carry scale-in protection (registerInstance sets it before the lease exists). */
  protected: boolean;
  terminatedAt?: number;
}

interface SimTask {
  trace: TraceTask;
  status: TaskStatus;
  claimedAt?: number;
  instanceId?: string;
  finalizedAt?: number;
}

export interface ProductRun extends SimulationResult {
  /** What the manager's passes did over the day, by action kind. */
  actions: Record<string, number>;
  /** Tasks bound by a release's hand-over, and by the dispatcher. */
  handOvers: number;
  dispatched: number;
}

export async function simulateProduct(trace: readonly TraceTask[], options: ProductOptions, spec: Pick<WorkloadSpec, "boot" | "seed">): Promise<ProductRun> {
  // The same stream of boot times as the peers' simulation (same seed, same salt).
  const rng = seededRng(spec.seed ^ 0x5eed);
  const agenda = new Agenda<Promise<void> | void>();
  const instances = new Map<string, SimInstance>();
  const leases = new Map<string, Lease>();
  const tasks = new Map<string, SimTask>();
  /** The fleet's queue, by position (the waiters table's range key). */
  const waiters = new Map<string, Waiter>();
  const actions: Record<string, number> = {};
  let handOvers = 0;
  let dispatched = 0;
  let desired = 0;
  let live = 0;
  let peak = 0;
  let launches = 0;
  let seq = 0;
  let now = 0;

  const alive = () => [...instances.values()].filter((i) => i.terminatedAt === undefined);

  const launch = () => {
    const instance: SimInstance = { id: `i-${(0x10000000 + seq++).toString(16)}`, launchedAt: now, booted: false, protected: false };
    instances.set(instance.id, instance);
    live++;
    launches++;
    peak = Math.max(peak, live);
    // The boot script tags the instance boot=ready as its last step; the manager's next pass registers it.
    agenda.at(now + Math.round(rng.uniform(spec.boot.min, spec.boot.max)), () => {
      if (instance.terminatedAt === undefined) instance.booted = true;
    });
  };

  const terminate = (instance: SimInstance) => {
    if (instance.terminatedAt !== undefined) return;
    instance.terminatedAt = now;
    live--;
  };

  /** The group converging on its desired capacity; it may only pick unprotected (not yet registered) instances. */
  const converge = () => {
    while (live < desired) launch();
    while (live > desired) {
      const unprotected = alive().filter((i) => !i.protected);
      if (unprotected.length === 0) break;
      terminate(rng.pick(unprotected));
    }
  };

  const bound = (taskId: string, instanceId: string) => {
    const task = tasks.get(taskId)!;
    task.claimedAt = now;
    task.instanceId = instanceId;
    task.status = "RUNNING";
    // The agent runs; its terminal report through the agent channel wakes the orchestrator, which finalizes.
    agenda.at(now + task.trace.duration, () => finished(task));
  };

  const oldestWaiters = (limit: number) => [...waiters.values()].sort((a, b) => a.position.localeCompare(b.position)).slice(0, limit);

  const store: PairingTarget = {
    oldestWaiters: async (_fleet, limit) => oldestWaiters(limit),
    readyInstanceIds: async (_fleet, limit) =>
      [...leases.values()]
        .filter((l) => l.state === "READY" && !l.taskId)
        .sort((a, b) => a.registeredAt.localeCompare(b.registeredAt))
        .slice(0, limit)
        .map((l) => l.instanceId),
    bind: async (_fleet, instanceId, waiter): Promise<BindOutcome> => {
      const lease = leases.get(instanceId);
      if (!lease || lease.state !== "READY" || lease.taskId) return { kind: "instance-taken" };
      if (!waiters.delete(waiter.position)) return { kind: "waiter-gone" };
      Object.assign(lease, { state: "BUSY", taskId: waiter.taskId, claimedAt: iso(now), taskCount: (lease.taskCount ?? 0) + 1 });
      bound(waiter.taskId, instanceId);
      return { kind: "bound", claimedAt: iso(now) };
    },
  };

  const kick = async () => {
    dispatched += (await dispatchRounds(store, FLEET, MAX_BINDS_PER_HOLDING, undefined)).length;
  };

  const release = async (task: SimTask) => {
    const lease = task.instanceId ? leases.get(task.instanceId) : undefined;
    if (!lease || lease.taskId !== task.trace.id) return;
    const target = releaseTarget(lease, options.settings, new Date(EPOCH + now * 1000));
    const oldest = target.offer ? oldestWaiters(1)[0] : undefined;
    if (oldest) {
      // Hand-over: the instance goes straight to the oldest waiter and stays busy (and protected).
      waiters.delete(oldest.position);
      Object.assign(lease, { taskId: oldest.taskId, claimedAt: iso(now), taskCount: (lease.taskCount ?? 0) + 1 });
      handOvers++;
      bound(oldest.taskId, lease.instanceId);
      return;
    }
    lease.state = target.to;
    delete lease.taskId;
    delete lease.claimedAt;
    lease.idleSince = iso(now);
    if (target.to === "DRAINING" && target.retire) lease.drainReason = "retire";
    if (target.to === "READY" && waiters.size > 0) await kick();
  };

  const finished = async (task: SimTask) => {
    task.status = "COMPLETED";
    task.finalizedAt = now;
    await release(task);
  };

  const arrive = async (task: SimTask) => {
    task.status = "STARTING";
    const position = waiterPosition(iso(task.trace.arrival), task.trace.id);
    waiters.set(position, { fleet: FLEET, position, taskId: task.trace.id, enqueuedAt: iso(now) });
    await kick();
  };

  const apply = async (action: FleetAction, refused: Set<string>, registered: string[]) => {
    actions[action.kind] = (actions[action.kind] ?? 0) + 1;
    const instance = "instanceId" in action ? instances.get(action.instanceId) : undefined;
    switch (action.kind) {
      case "register":
        if (leases.has(action.instanceId)) return;
        instance!.protected = true;
        leases.set(action.instanceId, { instanceId: action.instanceId, fleet: FLEET, state: "READY", registeredAt: iso(now), taskCount: 0 });
        registered.push(action.instanceId);
        return;
      case "drain": {
        const lease = leases.get(action.instanceId);
        if (!lease || lease.state !== "READY" || lease.taskId) {
          refused.add(action.instanceId);
          return;
        }
        Object.assign(lease, { state: "DRAINING", drainReason: action.reason, drainedAt: iso(now) });
        return;
      }
      case "terminate":
        if (refused.has(action.instanceId) || !instance) return;
        instance.protected = false;
        terminate(instance);
        if (action.decrement) desired--;
        // The termination lifecycle hook fires; the idle instance's hook is completed and its lease dropped.
        leases.delete(action.instanceId);
        converge();
        return;
      case "mark-unhealthy":
        // The group replaces it.
        terminate(instance!);
        leases.delete(action.instanceId);
        converge();
        return;
      case "mark-missing":
        leases.get(action.instanceId)!.missingSince = iso(now);
        return;
      case "clear-missing":
        delete leases.get(action.instanceId)!.missingSince;
        return;
      case "drop":
        if (action.lostTaskId) throw new Error(`simulation lost task ${action.lostTaskId}: no instance is ever lost in this day`);
        leases.delete(action.instanceId);
        return;
      case "set-desired":
        desired = action.to;
        converge();
        return;
      case "complete-lifecycle":
      case "mark-orphan":
      case "terminate-orphan":
        throw new Error(`the simulated group never produces '${action.kind}'`);
      default: {
        const unhandled: never = action;
        throw new Error(`unknown fleet action ${JSON.stringify(unhandled)}`);
      }
    }
  };

  /** One fleet manager pass (manageFleets): reconcile the leases of finished tasks, then plan and apply. */
  const pass = async () => {
    const busy = [...leases.values()].filter((l) => l.taskId);
    const statuses = new Map(busy.map((l) => [l.taskId!, tasks.get(l.taskId!)?.status]));
    for (const action of planReconcile({ leases: busy, tasks: statuses })) {
      if (action.kind === "release") await release(tasks.get(action.taskId)!);
    }
    const members = alive();
    const observation: FleetObservation = {
      fleet: FLEET,
      now: iso(now),
      group: { desired, min: 0, max: options.maxSize, members: members.map((i) => ({ instanceId: i.id, lifecycleState: "InService", health: "Healthy" })) },
      instances: members.map((i) => ({ instanceId: i.id, state: "running", launchedAt: iso(i.launchedAt), ...(i.booted ? { boot: BOOT_READY } : {}) })),
      leases: [...leases.values()].sort((a, b) => a.registeredAt.localeCompare(b.registeredAt) || a.instanceId.localeCompare(b.instanceId)),
      queued: waiters.size,
    };
    const refused = new Set<string>();
    const registered: string[] = [];
    for (const action of planFleet(observation, options.settings)) await apply(action, refused, registered);
    if (registered.length) await kick();
  };

  for (const t of trace) {
    const task: SimTask = { trace: t, status: "SUBMITTED" };
    tasks.set(t.id, task);
    agenda.at(t.arrival, () => arrive(task));
  }
  const unfinished = () => [...tasks.values()].some((t) => t.finalizedAt === undefined);
  const invocation = () => {
    // manageFleetsFor: a pass every PASS_SECONDS while the next one still starts within the budget.
    const start = now;
    for (let offset = 0; offset < PASS_BUDGET_SECONDS; offset += PASS_SECONDS) agenda.at(start + offset, pass);
    if (now < DAY || unfinished()) agenda.at(start + options.scheduleSeconds, invocation);
  };
  agenda.at(0, invocation);

  for (let e = agenda.pop(); e; e = agenda.pop()) {
    now = e.t;
    await e.run();
  }

  const finalized = [...tasks.values()].map((t) => t.finalizedAt ?? 0);
  const horizon = Math.max(DAY, ...finalized);
  const waits = [...tasks.values()].map((t) => {
    if (t.claimedAt === undefined) throw new Error(`${options.name ?? "agent-compute"}: task ${t.trace.id} never got an instance`);
    return t.claimedAt - t.trace.arrival;
  });
  return {
    ...summarize(options.name ?? "agent-compute", options.settings.warmBuffer, waits, billedHours([...instances.values()], horizon), peak, launches, horizon),
    actions,
    handOvers,
    dispatched,
  };
}
