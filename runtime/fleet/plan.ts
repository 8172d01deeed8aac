/**
 * One fleet manager pass, decided as a pure function of what the pass observed: the Auto Scaling group, the
 * fleet's EC2 instances, the lease table and the queue. The executor (manager.ts) applies the actions; each is
 * conditional in the lease table or idempotent in AWS, so a plan made from a slightly stale view does no harm.
 *
 * - Scale-out raises the desired capacity; instances still booting count toward it, so the group is neither
 *   over- nor under-asked while they boot.
 * - Scale-in never lowers the desired capacity by itself (the group would pick the victims): the plan names idle
 *   READY instances, which are moved READY → DRAINING (conditional, so no claim can take them) and then
 *   terminated through the group with the desired capacity decremented.
 * - Instances past their lifetime are drained the same way and terminated without the decrement (replaced).
 * - A failed boot, or one that did not report ready within the deadline, is marked unhealthy so the group
 *   replaces it; it never counted as capacity.
 * - Repairs are two-phase: a lease whose instance is not seen running is marked first and dropped on the next
 *   pass if still missing (its task is reported lost); a fleet instance outside the group is marked first and
 *   terminated on the next pass.
 */
import type { Ec2FleetConfig } from "../config";
import { FLEET_DEFAULTS } from "../limits";
import { desiredCapacity } from "./scaling";
import type { Lease } from "./lease";

export interface ObservedInstance {
  instanceId: string;
  /** EC2 state: pending, running, stopping, … */
  state: string;
  launchedAt: string;
  /** The boot tag: "ready", "failed", or undefined while booting. */
  boot?: string;
  /** Set by the previous pass when the instance was found outside the group (phase one of the orphan repair). */
  orphanSince?: string;
}

export interface ObservedGroupMember {
  instanceId: string;
  /** Pending, InService, Terminating, Terminating:Wait, … */
  lifecycleState: string;
  health: string;
}

export interface FleetObservation {
  fleet: string;
  now: string;
  /** The group: undefined when the fleet has none (tests, a fleet managed by hand). */
  group?: { desired: number; min: number; max: number; members: ObservedGroupMember[] };
  /** Every instance carrying the fleet tag that is not terminated. */
  instances: ObservedInstance[];
  leases: Lease[];
  queued: number;
}

export type FleetAction =
  | { kind: "register"; instanceId: string }
  | { kind: "mark-unhealthy"; instanceId: string; why: "boot-failed" | "boot-deadline" }
  | { kind: "mark-missing"; instanceId: string }
  | { kind: "clear-missing"; instanceId: string }
  | { kind: "drop"; instanceId: string; lostTaskId?: string }
  | { kind: "drain"; instanceId: string; reason: "scale-in" | "retire" }
  /** Terminate a DRAINING instance through the group; `decrement` for a scale-in, not for a replacement. */
  | { kind: "terminate"; instanceId: string; decrement: boolean }
  /** The group is terminating it and it holds no task: let the termination go on. */
  | { kind: "complete-lifecycle"; instanceId: string }
  | { kind: "mark-orphan"; instanceId: string }
  | { kind: "terminate-orphan"; instanceId: string }
  | { kind: "set-desired"; from: number; to: number };

const TERMINATING = /^Terminating/;

function secondsBetween(from: string, to: string): number {
  return (Date.parse(to) - Date.parse(from)) / 1000;
}

export function planFleet(o: FleetObservation, settings: Ec2FleetConfig): FleetAction[] {
  const actions: FleetAction[] = [];
  const readyDeadline = settings.readyDeadlineSeconds ?? FLEET_DEFAULTS.readyDeadlineSeconds;
  const lifetime = settings.maxInstanceLifetimeSeconds ?? FLEET_DEFAULTS.maxInstanceLifetimeSeconds;
  const members = new Map((o.group?.members ?? []).map((m) => [m.instanceId, m]));
  const running = new Map(o.instances.filter((i) => i.state === "running").map((i) => [i.instanceId, i]));
  const leased = new Map(o.leases.map((l) => [l.instanceId, l]));
  const terminatingInGroup = (id: string) => TERMINATING.test(members.get(id)?.lifecycleState ?? "");

  // Instances: register the booted, replace the failed and the late, repair orphans (two phases).
  for (const i of o.instances) {
    if (i.state !== "running" && i.state !== "pending") continue;
    const member = members.get(i.instanceId);
    if (o.group && !member) {
      actions.push(i.orphanSince ? { kind: "terminate-orphan", instanceId: i.instanceId } : { kind: "mark-orphan", instanceId: i.instanceId });
      continue;
    }
    if (member && (TERMINATING.test(member.lifecycleState) || member.health !== "Healthy")) continue;
    if (leased.has(i.instanceId)) continue;
    if (i.state === "running" && i.boot === "ready") {
      actions.push({ kind: "register", instanceId: i.instanceId });
    } else if (i.boot === "failed") {
      actions.push({ kind: "mark-unhealthy", instanceId: i.instanceId, why: "boot-failed" });
    } else if (secondsBetween(i.launchedAt, o.now) > readyDeadline) {
      actions.push({ kind: "mark-unhealthy", instanceId: i.instanceId, why: "boot-deadline" });
    }
  }

  // Leases: two-phase drop of the missing; finish what draining started.
  const gone = new Set<string>();
  for (const l of o.leases) {
    if (!running.has(l.instanceId)) {
      if (l.missingSince) {
        actions.push({ kind: "drop", instanceId: l.instanceId, ...(l.state !== "READY" && l.taskId ? { lostTaskId: l.taskId } : {}) });
      } else {
        actions.push({ kind: "mark-missing", instanceId: l.instanceId });
      }
      gone.add(l.instanceId);
      continue;
    }
    if (l.missingSince) actions.push({ kind: "clear-missing", instanceId: l.instanceId });
    if (l.state === "DRAINING" && !l.taskId) {
      if (l.drainReason === "terminating") actions.push({ kind: "complete-lifecycle", instanceId: l.instanceId });
      else if (!terminatingInGroup(l.instanceId)) actions.push({ kind: "terminate", instanceId: l.instanceId, decrement: l.drainReason === "scale-in" });
    }
  }

  // Retirement: idle instances past their lifetime are drained and replaced.
  const retiring = new Set<string>();
  for (const l of o.leases) {
    if (gone.has(l.instanceId) || l.state !== "READY") continue;
    if (secondsBetween(l.registeredAt, o.now) >= lifetime) {
      actions.push({ kind: "drain", instanceId: l.instanceId, reason: "retire" }, { kind: "terminate", instanceId: l.instanceId, decrement: false });
      retiring.add(l.instanceId);
    }
  }

  if (!o.group) return actions;

  // Scaling. Live capacity is every member not on its way out and not draining; booting ones included.
  const draining = new Set(o.leases.filter((l) => l.state === "DRAINING").map((l) => l.instanceId));
  const busy = o.leases.filter((l) => l.state === "BUSY" && !gone.has(l.instanceId)).length;
  const idle = o.leases.filter((l) => l.state === "READY" && !gone.has(l.instanceId) && !retiring.has(l.instanceId));
  const wanted = desiredCapacity({
    queued: o.queued,
    busy,
    ready: idle.length,
    warmBuffer: settings.warmBuffer ?? 0,
    min: o.group.min,
    max: o.group.max,
  });
  const live = o.group.members.filter((m) => !TERMINATING.test(m.lifecycleState) && !draining.has(m.instanceId) && !retiring.has(m.instanceId)).length;
  if (wanted > o.group.desired) {
    actions.push({ kind: "set-desired", from: o.group.desired, to: wanted });
  } else if (wanted < live) {
    // Only idle ready instances go; booting ones are kept (they will be idle, and removed, if still unwanted).
    const grace = settings.scaleInIdleSeconds ?? FLEET_DEFAULTS.scaleInIdleSeconds;
    const idleFor = (l: Lease) => secondsBetween(l.idleSince ?? l.registeredAt, o.now);
    const eligible = idle.filter((l) => idleFor(l) >= grace);
    const excess = Math.min(live - wanted, eligible.length);
    const victims = [...eligible].sort((a, b) => a.registeredAt.localeCompare(b.registeredAt)).slice(0, excess);
    for (const v of victims) {
      actions.push({ kind: "drain", instanceId: v.instanceId, reason: "scale-in" }, { kind: "terminate", instanceId: v.instanceId, decrement: true });
    }
  } else if (wanted < o.group.desired && live <= wanted) {
    // Launches that never happened (capacity errors): ask for no more than is wanted. With desired ≥ live the
    // group has nothing to terminate.
    actions.push({ kind: "set-desired", from: o.group.desired, to: Math.max(wanted, live) });
  }
  return actions;
}
