/**
 * Repairs what a crash leaves behind in the lease table. The plan is a pure function of what was observed
 * (leases, the statuses of their tasks, the instances still running); a thin executor applies it.
 */
import { isTerminal, type TaskStatus } from "../tasks/status";
import type { Lease, LeaseTable } from "./lease";

export interface ReconcileInput {
  leases: readonly Lease[];
  /**
   * Status of each task a busy lease names, as read from the tasks table. A task id mapped to undefined was read
   * and does not exist (expired or never written); a task id absent from the map was not read and is left alone.
   */
  tasks: ReadonlyMap<string, TaskStatus | undefined>;
  /** Instances of the fleet that are running and booted; when given, leases of any other instance are dropped. */
  runningInstanceIds?: ReadonlySet<string>;
}

export type ReconcileAction =
  /** The instance is gone: forget it. A task it was running is reported as lost so the orchestrator can fail it. */
  | { kind: "drop-instance"; instanceId: string; fleet: string; lostTaskId?: string }
  /** The task is finished or gone but still holds the instance: give it back to the fleet. */
  | { kind: "release"; instanceId: string; fleet: string; taskId: string; why: "task-terminal" | "task-missing"; status?: TaskStatus };

export function planReconcile(input: ReconcileInput): ReconcileAction[] {
  const actions: ReconcileAction[] = [];
  for (const lease of input.leases) {
    if (input.runningInstanceIds && !input.runningInstanceIds.has(lease.instanceId)) {
      const status = lease.taskId ? input.tasks.get(lease.taskId) : undefined;
      const lost = lease.state === "BUSY" && lease.taskId && !(status && isTerminal(status)) ? lease.taskId : undefined;
      actions.push({ kind: "drop-instance", instanceId: lease.instanceId, fleet: lease.fleet, ...(lost ? { lostTaskId: lost } : {}) });
      continue;
    }
    if (lease.state !== "BUSY" || !lease.taskId || !input.tasks.has(lease.taskId)) continue;
    const status = input.tasks.get(lease.taskId);
    if (status === undefined) {
      actions.push({ kind: "release", instanceId: lease.instanceId, fleet: lease.fleet, taskId: lease.taskId, why: "task-missing" });
    } else if (isTerminal(status)) {
      actions.push({ kind: "release", instanceId: lease.instanceId, fleet: lease.fleet, taskId: lease.taskId, why: "task-terminal", status });
    }
  }
  return actions;
}

export interface ReconcileOutcome {
  released: { instanceId: string; taskId: string; why: string }[];
  dropped: string[];
  lostTasks: { taskId: string; instanceId: string }[];
}

/** Apply a plan. Each action is conditional in the lease table, so a plan made from a stale view does no harm. */
export async function executeReconcile(table: LeaseTable, actions: readonly ReconcileAction[]): Promise<ReconcileOutcome> {
  const outcome: ReconcileOutcome = { released: [], dropped: [], lostTasks: [] };
  for (const action of actions) {
    if (action.kind === "drop-instance") {
      const old = await table.dropInstance(action.instanceId);
      if (!old) continue;
      outcome.dropped.push(action.instanceId);
      if (action.lostTaskId && old.taskId === action.lostTaskId) {
        outcome.lostTasks.push({ taskId: action.lostTaskId, instanceId: action.instanceId });
      }
    } else {
      const { released } = await table.releaseInstance(action.instanceId, action.taskId);
      if (released) outcome.released.push({ instanceId: action.instanceId, taskId: action.taskId, why: action.why });
    }
  }
  return outcome;
}
