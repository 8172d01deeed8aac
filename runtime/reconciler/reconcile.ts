/**
 * One pass of the reconciler: observe, plan, apply. The scheduled Lambda (reconciler/lambda.ts) runs one pass per
 * invocation; the local platform runs the same pass on an interval.
 */
import type { Runtime } from "../runtime";
import { ACTIVE_STATUSES } from "../tasks/status";
import { applyRepairs, countByKind, type AppliedAction } from "./apply";
import type { OrchestratorExecutions } from "./executions";
import { observe } from "./observe";
import { planRepairs, type ObservedTask, type ReconcileThresholds, type RepairKind } from "./plan";

/** A task this young (since its last write) may still be on its way to its orchestrator. */
export const DISPATCH_GRACE_SECONDS = 120;

export interface ReconcileOptions {
  /** Where orchestrators run; without it, no task is judged by its orchestrator (deadlines and releases still are). */
  executions?: OrchestratorExecutions;
  thresholds?: Partial<ReconcileThresholds>;
  lookBackSeconds?: number;
}

export interface ReconcileReport {
  observed: {
    active: number;
    /** Active tasks per status (QUEUED is the queue depth). */
    activeByStatus: Record<string, number>;
    unreleased: number;
    slots: number;
    leases: number;
    runningOrchestrators?: number;
    fleetInstances: Record<string, Record<string, number>>;
  };
  applied: AppliedAction[];
  counts: Record<RepairKind, number>;
  errors: number;
}

/**
 * Thresholds from the stack's limits. A finished task is left to its orchestrator for one safety-net poll (it is
 * woken at once, but a wake can be lost) plus the compute's grace to exit, plus a minute.
 */
export function reconcileThresholds(rt: Runtime): ReconcileThresholds {
  const l = rt.config.limits;
  return {
    taskTimeoutSeconds: l.taskTimeoutSeconds,
    heartbeatTimeoutSeconds: l.heartbeatTimeoutSeconds,
    startupGraceSeconds: l.startupGraceSeconds,
    dispatchGraceSeconds: DISPATCH_GRACE_SECONDS,
    finalizeGraceSeconds: l.maxPollIntervalSeconds + l.computeStopGraceSeconds + 60,
  };
}

export async function reconcileOnce(rt: Runtime, options: ReconcileOptions = {}): Promise<ReconcileReport> {
  const lookBackSeconds = options.lookBackSeconds ?? rt.config.limits.taskTimeoutSeconds + 86_400;
  const observation = await observe(rt, options.executions, { lookBackSeconds });
  const actions = planRepairs(observation, { ...reconcileThresholds(rt), ...options.thresholds });
  const byId = new Map<string, ObservedTask>();
  for (const t of [...observation.active, ...observation.unreleased]) byId.set(t.task_id, t);
  const applied = await applyRepairs(rt, actions, options.executions, byId);
  return {
    observed: {
      active: observation.active.length,
      activeByStatus: Object.fromEntries(ACTIVE_STATUSES.map((s) => [s, observation.active.filter((t) => t.status === s).length])),
      fleetInstances: { ...observation.fleetInstances },
      unreleased: observation.unreleased.length,
      slots: observation.slots.length,
      leases: observation.leases.length,
      ...(observation.runningOrchestrators ? { runningOrchestrators: observation.runningOrchestrators.size } : {}),
    },
    applied,
    counts: countByKind(applied),
    errors: applied.filter((a) => a.outcome === "error").length,
  };
}
