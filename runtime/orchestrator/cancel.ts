/**
 * Cancel from any non-terminal status. The conditional write to CANCELLED comes first: from then on the agent
 * (which stops when it sees CANCELLED), the start step (whose handle write is conditional on STARTING|RUNNING)
 * and the orchestrator all see it. Then whatever compute the record names is stopped here, so the compute does
 * not outlive the cancel even if the orchestrator is between polls, and the orchestrator is woken to finalize.
 */
import { BACKEND_NAMES } from "../compute/handle";
import type { ComputeStrategy } from "../compute/strategy";
import { IllegalTransitionError } from "../errors";
import type { Runtime } from "../runtime";
import type { TaskRecord } from "../tasks/record";
import { ACTIVE_STATUSES, isTerminal } from "../tasks/status";
import { TaskNotCancellableError, TaskNotFoundError } from "./errors";
import { wakeNextQueued } from "./admission";
import { ConcurrencySlots } from "./slots";
import { wakeOrchestrator } from "./wake";

export interface CancelOptions {
  /** The caller; a task of another user is reported as not found. */
  userId?: string;
  reason?: string;
}

export async function cancelTask(rt: Runtime, taskId: string, options: CancelOptions = {}): Promise<TaskRecord> {
  const existing = await rt.tasks.get(taskId);
  if (!existing || (options.userId !== undefined && existing.user_id !== options.userId)) throw new TaskNotFoundError(taskId);
  if (isTerminal(existing.status)) throw new TaskNotCancellableError(taskId, existing.status);

  const reason = options.reason ?? (options.userId ? `cancelled by ${options.userId}` : "cancelled");
  let task: TaskRecord;
  try {
    task = await rt.tasks.transition(taskId, "CANCELLED", { error_message: reason }, ACTIVE_STATUSES);
  } catch (err) {
    if (err instanceof IllegalTransitionError && err.actual !== undefined && isTerminal(err.actual)) {
      throw new TaskNotCancellableError(taskId, err.actual);
    }
    throw err;
  }
  await rt.events.append(taskId, "status", reason, { status: "CANCELLED" });

  // The record returned by the conditional write is the one the write saw: if the start step persisted a
  // handle before it, the handle is here; if not, the start step's own write fails and it stops the compute.
  const handle = task.compute_metadata;
  if (handle) {
    const what = BACKEND_NAMES[handle.type];
    try {
      await (rt.strategy(handle.type) as ComputeStrategy).stopSession(handle, reason);
      await rt.events.append(taskId, "info", `stopped the ${what}`);
    } catch (err) {
      // The orchestrator's finalize stops it again; the task stays CANCELLED either way.
      await rt.events.append(taskId, "error", `could not stop the ${what} yet: ${(err as Error).message}`);
    }
  }
  // No lease is released here: with a handle, stopSession gave it back; without one, a start may be using it right
  // now (its SendCommand would land on an instance another task claimed), so the start's own failure path or
  // finalize releases it.
  await new ConcurrencySlots(rt.config).release(task.user_id, taskId);
  await wakeOrchestrator(rt, taskId);
  await wakeNextQueued(rt, task.user_id);
  return task;
}
