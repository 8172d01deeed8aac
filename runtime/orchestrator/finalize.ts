/**
 * The finalize step: give back everything the task held — its compute if it did not finish by itself, its
 * concurrency slot and what its backend holds beyond the session (release.ts), its payload — and write the
 * terminal event. Every operation is idempotent and
 * the terminal event is written only if absent, so a re-run (durable retry, local restart) changes nothing.
 */
import { BACKEND_NAMES } from "../compute/handle";
import type { ComputeStrategy } from "../compute/strategy";
import type { Runtime } from "../runtime";
import type { TaskRecord } from "../tasks/record";
import { isTerminal, type TaskStatus } from "../tasks/status";
import { TaskNotFoundError } from "./errors";
import { releaseHeld } from "./release";

export interface FinalizeResult {
  task_id: string;
  status: TaskStatus;
  error_message?: string;
  exit_code?: number;
  pr_url?: string;
}

export async function finalizeTask(rt: Runtime, taskId: string): Promise<FinalizeResult> {
  const task = await rt.tasks.get(taskId);
  if (!task) throw new TaskNotFoundError(taskId);
  if (!isTerminal(task.status)) {
    throw new Error(`task ${taskId} is ${task.status}; finalize needs a terminal status (COMPLETED, FAILED, CANCELLED, TIMED_OUT)`);
  }

  await stopLeftoverCompute(rt, task);
  await releaseHeld(rt, task);
  if (task.payload_uri) await rt.payloads.delete(task.payload_uri);
  if (!(await hasFinalEvent(rt, taskId))) {
    await rt.events.append(taskId, "status", finalMessage(task), { status: task.status, data: { final: true } });
  }
  return {
    task_id: taskId,
    status: task.status,
    ...(task.error_message !== undefined ? { error_message: task.error_message } : {}),
    ...(task.exit_code !== undefined ? { exit_code: task.exit_code } : {}),
    ...(task.pr_url !== undefined ? { pr_url: task.pr_url } : {}),
  };
}

/**
 * A task that ended other than COMPLETED may still have compute running: a cancel whose stop failed, or an
 * agent that wrote FAILED and hung. Compute that reports itself finished is left alone — stopping it again is
 * pointless, and for a local process whose pid the OS may already have reused, harmful.
 */
async function stopLeftoverCompute(rt: Runtime, task: TaskRecord): Promise<void> {
  const handle = task.compute_metadata;
  if (!handle || task.status === "COMPLETED") return;
  const strategy = rt.strategy(handle.type) as ComputeStrategy;
  const state = (await strategy.pollSession(handle).catch(() => undefined))?.state;
  if (state === "EXITED" || state === "LOST") return;
  try {
    await strategy.stopSession(handle, `task ended ${task.status}`);
  } catch (err) {
    await rt.events.append(task.task_id, "error", `could not stop the ${BACKEND_NAMES[handle.type]}: ${(err as Error).message}`);
  }
}

async function hasFinalEvent(rt: Runtime, taskId: string): Promise<boolean> {
  for await (const event of rt.events.each(taskId)) if (event.data?.final === true) return true;
  return false;
}

function finalMessage(task: TaskRecord): string {
  const detail = task.error_message ?? (task.pr_url ? `pull request ${task.pr_url}` : undefined);
  return `task ${task.status}${detail ? `: ${detail}` : ""}`;
}
