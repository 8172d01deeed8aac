/**
 * The finalize step: give back everything the task held — its concurrency slot, its compute if it did not finish
 * by itself, what its backend holds beyond the session (release.ts: an EC2 lease), its payload — write the
 * terminal event, and mark the task released_at. Every
 * operation is idempotent and the terminal event is written only if absent, so a re-run (durable retry, local
 * restart, the reconciler) changes nothing.
 */
import { BACKEND_NAMES, type SessionHandle } from "../compute/handle";
import type { ComputeStrategy } from "../compute/strategy";
import { IllegalTransitionError } from "../errors";
import type { Runtime } from "../runtime";
import type { TaskRecord } from "../tasks/record";
import { isTerminal, type TaskStatus } from "../tasks/status";
import { sessionIdOf } from "./start";
import { TaskNotFoundError } from "./errors";
import { secondsSince } from "./load";
import { wakeNextQueued } from "./admission";
import { releaseBackendHold } from "./release";
import { ConcurrencySlots } from "./slots";

export interface FinalizeResult {
  task_id: string;
  status: TaskStatus;
  error_message?: string;
  exit_code?: number;
  pr_url?: string;
  /**
   * The task finished by its agent's own word (COMPLETED or FAILED) and its compute still runs, within its grace
   * to exit: finalize again after this many seconds, and the compute is stopped then. Everything else is released.
   */
  stopComputeInSeconds?: number;
}

export interface FinalizeOptions {
  /** Stop compute that still runs even within its grace (the last grace round; the reconciler). */
  stopRunningCompute?: boolean;
}

/** Statuses the agent itself may have written before exiting: its compute gets a grace to exit by itself. */
const AGENT_ENDED: readonly TaskStatus[] = ["COMPLETED", "FAILED"];

export async function finalizeTask(rt: Runtime, taskId: string, options: FinalizeOptions = {}): Promise<FinalizeResult> {
  const task = await rt.tasks.get(taskId);
  if (!task) throw new TaskNotFoundError(taskId);
  if (!isTerminal(task.status)) {
    throw new Error(`task ${taskId} is ${task.status}; finalize needs a terminal status (COMPLETED, FAILED, CANCELLED, TIMED_OUT)`);
  }
  const result: FinalizeResult = {
    task_id: taskId,
    status: task.status,
    ...(task.error_message !== undefined ? { error_message: task.error_message } : {}),
    ...(task.exit_code !== undefined ? { exit_code: task.exit_code } : {}),
    ...(task.pr_url !== undefined ? { pr_url: task.pr_url } : {}),
  };

  // The user's slot does not wait for the compute: the task is over for them.
  await new ConcurrencySlots(rt.config).release(task.user_id, taskId);
  await wakeNextQueued(rt, task.user_id);
  if (!(await hasFinalEvent(rt, taskId))) {
    await rt.events.append(taskId, "status", finalMessage(task), { status: task.status, data: { final: true } });
    rt.metrics.count("TasksFinished", 1, { backend: task.compute_type ?? task.backend ?? "none", status: task.status });
    rt.metrics.flush();
  }
  const graceLeft = await stopLeftoverCompute(rt, task, options.stopRunningCompute ?? false);
  // The lease and the payload stay while the compute may still use them.
  if (graceLeft !== undefined) return { ...result, stopComputeInSeconds: graceLeft };

  await releaseBackendHold(rt, task);
  if (task.payload_uri) await rt.payloads.delete(task.payload_uri);
  if (!task.released_at) {
    await rt.tasks.update(taskId, { released_at: rt.now().toISOString() }, [task.status]).catch((err) => {
      if (!(err instanceof IllegalTransitionError)) throw err;
    });
  }
  return result;
}

/**
 * Stop the task's compute if it still runs; returns the seconds of grace left when it runs and may still exit by
 * itself. Compute that reports itself finished is left alone — stopping it again is pointless, and for a local
 * process whose pid the OS may already have reused, harmful. A CANCELLED or TIMED_OUT task's compute is stopped at
 * once; an agent that wrote COMPLETED or FAILED gets computeStopGraceSeconds from the terminal write to exit (a
 * container that hangs after its result is stopped then, not left to run forever).
 */
async function stopLeftoverCompute(rt: Runtime, task: TaskRecord, force: boolean): Promise<number | undefined> {
  const handles = task.compute_metadata ? await stillRunning(rt, task.compute_metadata) : await unrecordedSessions(rt, task);
  if (!handles.length) return undefined;
  if (!force && AGENT_ENDED.includes(task.status)) {
    const since = secondsSince(task.finished_at, rt.now()) ?? 0;
    const left = Math.ceil(rt.config.limits.computeStopGraceSeconds - since);
    if (left > 0) return left;
  }
  for (const handle of handles) {
    const what = BACKEND_NAMES[handle.type];
    try {
      await (rt.strategy(handle.type) as ComputeStrategy).stopSession(handle, `task ended ${task.status}`);
      await rt.events.append(task.task_id, "info", `stopped the ${what} ${sessionIdOf(handle)}, still running after the task ended ${task.status}`);
    } catch (err) {
      await rt.events.append(task.task_id, "error", `could not stop the ${what}: ${(err as Error).message}`);
      // Not released: the reconciler finalizes the task again and retries the stop.
      throw err;
    }
  }
  return undefined;
}

async function stillRunning(rt: Runtime, handle: SessionHandle): Promise<SessionHandle[]> {
  const state = (await (rt.strategy(handle.type) as ComputeStrategy).pollSession(handle).catch(() => undefined))?.state;
  return state === "EXITED" || state === "LOST" ? [] : [handle];
}

/**
 * A start that may have gone out without its handle being saved (the orchestrator died between the two): the
 * backend is asked, by task id, for compute of this task that still runs (ECS startedBy, the EC2 lease's instance
 * or the fleet's recent commands, the AgentCore session id, the local run's pid file).
 */
async function unrecordedSessions(rt: Runtime, task: TaskRecord): Promise<SessionHandle[]> {
  const backend = task.compute_type ?? task.backend;
  if (!task.start_sent_at || !backend) return [];
  const strategy = rt.strategy(backend) as ComputeStrategy;
  return (await strategy.findUnrecordedSessions?.(task)) ?? [];
}

async function hasFinalEvent(rt: Runtime, taskId: string): Promise<boolean> {
  for await (const event of rt.events.each(taskId)) if (event.data?.final === true) return true;
  return false;
}

function finalMessage(task: TaskRecord): string {
  const detail = task.error_message ?? (task.pr_url ? `pull request ${task.pr_url}` : undefined);
  return `task ${task.status}${detail ? `: ${detail}` : ""}`;
}
