/**
 * What the reconciler repairs, decided from one observation of the world: a pure function, tested with a table.
 * The executor (reconciler/apply.ts) carries each action out with conditional writes, so an action planned from a
 * view that has gone stale does nothing.
 *
 * The repairs, each for something a crash can leave behind:
 * - a task that never got an orchestrator (dispatch failed after submit) is re-driven;
 * - an active task whose orchestrator is no longer running (it failed, timed out, was stopped) is failed;
 * - a QUEUED or STARTING task past its deadline (the task timeout; a STARTING heartbeat gone stale) is failed;
 * - a finished task that was never fully released (finalize did not run or did not finish) is finalized again,
 *   which also stops compute still running for it once its grace has passed;
 * - a slot or an EC2 lease held for a task that is missing, or finished and already released, is given back.
 */
import { capacityFailureReason } from "../fleet/capacity-error";
import { staleHeartbeat } from "../liveness";
import { secondsSince } from "../orchestrator/load";
import type { TaskRecord } from "../tasks/record";
import { isTerminal, type TaskStatus } from "../tasks/status";

/** The fields of a task the reconciler reads. */
export type ObservedTask = Pick<
  TaskRecord,
  | "task_id"
  | "user_id"
  | "status"
  | "created_at"
  | "updated_at"
  | "started_at"
  | "finished_at"
  | "agent_heartbeat_at"
  | "execution_arn"
  | "released_at"
  | "fleet"
  | "capacity_error"
>;

export interface Observation {
  now: Date;
  /** Every task in SUBMITTED, QUEUED, STARTING or RUNNING. */
  active: readonly ObservedTask[];
  /** Finished tasks (of the look-back window) that finalize has not marked released. */
  unreleased: readonly ObservedTask[];
  /**
   * Task ids whose orchestrator runs now, read *before* the tasks. Undefined when that cannot be known: then no
   * task is judged by its orchestrator.
   */
  runningOrchestrators?: ReadonlySet<string>;
  /** Holders of concurrency slots. */
  slots: readonly { userId: string; taskId: string }[];
  /** BUSY EC2 leases. */
  leases: readonly { instanceId: string; taskId: string }[];
  /** Instances per fleet and lease state (READY, BUSY), for the capacity metrics. */
  fleetInstances?: Readonly<Record<string, Record<string, number>>>;
  /** Other tasks named by a slot or lease, by id; undefined = read and does not exist. */
  others: ReadonlyMap<string, ObservedTask | undefined>;
}

export interface ReconcileThresholds {
  taskTimeoutSeconds: number;
  heartbeatTimeoutSeconds: number;
  startupGraceSeconds: number;
  /** A task younger than this (since its last update) may still be on its way to an orchestrator: left alone. */
  dispatchGraceSeconds: number;
  /** A finished task is the orchestrator's to finalize for this long; after it, the reconciler finalizes it. */
  finalizeGraceSeconds: number;
}

export type RepairAction =
  | { kind: "redrive"; taskId: string; reason: string }
  | { kind: "fail"; taskId: string; from: TaskStatus; to: "FAILED" | "TIMED_OUT"; reason: string }
  | { kind: "finalize"; taskId: string; reason: string }
  | { kind: "release-slot"; userId: string; taskId: string; reason: string }
  | { kind: "release-lease"; instanceId: string; taskId: string; reason: string };

export type RepairKind = RepairAction["kind"];

export function planRepairs(o: Observation, t: ReconcileThresholds): RepairAction[] {
  const actions: RepairAction[] = [];
  const age = (iso: string | undefined) => secondsSince(iso, o.now) ?? 0;

  for (const task of o.active) {
    const verdict = judgeActive(task, o, t, age);
    if (verdict) actions.push(verdict);
  }

  const finalizing = new Set<string>();
  for (const task of o.unreleased) {
    if (!isTerminal(task.status)) continue;
    if (age(task.finished_at ?? task.updated_at) < t.finalizeGraceSeconds) continue;
    finalizing.add(task.task_id);
    actions.push({ kind: "finalize", taskId: task.task_id, reason: `task ${task.status} was never fully released` });
  }

  // A holder's task: among the active ones, the unreleased ones, or read on its own.
  const known = new Map<string, ObservedTask | undefined>(o.others);
  for (const task of [...o.active, ...o.unreleased]) known.set(task.task_id, task);
  const holderVerdict = (taskId: string): string | undefined => {
    if (finalizing.has(taskId) || !known.has(taskId)) return undefined; // finalize releases it / not read: leave it
    const task = known.get(taskId);
    if (!task) return `task ${taskId} does not exist`;
    // A finished task is released by its finalize; only one already marked released can still hold something here.
    if (isTerminal(task.status) && task.released_at && age(task.released_at) >= t.dispatchGraceSeconds) {
      return `task ${taskId} ended ${task.status} and was released`;
    }
    return undefined;
  };
  for (const slot of o.slots) {
    const reason = holderVerdict(slot.taskId);
    if (reason) actions.push({ kind: "release-slot", userId: slot.userId, taskId: slot.taskId, reason });
  }
  for (const lease of o.leases) {
    const reason = holderVerdict(lease.taskId);
    if (reason) actions.push({ kind: "release-lease", instanceId: lease.instanceId, taskId: lease.taskId, reason });
  }
  return actions;
}

function judgeActive(
  task: ObservedTask,
  o: Observation,
  t: ReconcileThresholds,
  age: (iso: string | undefined) => number,
): RepairAction | undefined {
  const fail = (to: "FAILED" | "TIMED_OUT", reason: string): RepairAction => ({ kind: "fail", taskId: task.task_id, from: task.status, to, reason });
  const elapsed = age(task.created_at);

  // Deadlines hold whether or not an orchestrator runs: it would apply them too, at its next poll.
  if (task.status === "QUEUED" && elapsed >= t.taskTimeoutSeconds) {
    // QUEUED → TIMED_OUT is not a legal move (nothing ran): FAILED, saying why.
    return fail("FAILED", `the task waited ${Math.round(elapsed)}s in the queue, past its ${t.taskTimeoutSeconds}s timeout (reconciler)`);
  }
  if (task.status === "STARTING") {
    if (elapsed >= t.taskTimeoutSeconds) {
      if (task.capacity_error) return fail("FAILED", `${capacityFailureReason(task.fleet, task.capacity_error, elapsed, t.taskTimeoutSeconds)} (reconciler)`);
      return fail("TIMED_OUT", `the task was still starting after ${Math.round(elapsed)}s, past its ${t.taskTimeoutSeconds}s timeout (reconciler)`);
    }
    if (task.agent_heartbeat_at) {
      const stale = staleHeartbeat(
        { taskStatus: task.status, heartbeatAgeSeconds: age(task.agent_heartbeat_at), sinceStartSeconds: age(task.started_at) },
        t,
      );
      if (stale) return fail("FAILED", `the agent ${stale} while its task was STARTING (reconciler)`);
    }
  }

  if (!o.runningOrchestrators || o.runningOrchestrators.has(task.task_id)) return undefined;
  if (age(task.updated_at) < t.dispatchGraceSeconds) return undefined;
  if (task.status === "SUBMITTED" && !task.execution_arn) {
    return { kind: "redrive", taskId: task.task_id, reason: "the task was never handed to an orchestrator" };
  }
  return fail("FAILED", `the task's orchestrator stopped running while the task was ${task.status} (reconciler)`);
}
