/**
 * The await step: one poll of a started task. The compute is polled *before* the task record is read, so a
 * terminal status the agent wrote just before exiting is always seen; then the one liveness decision
 * (runtime/liveness.ts) says continue, done, fail or time out, and this step carries the verdict out.
 */
import { BACKEND_NAMES, type SessionHandle } from "../compute/handle";
import type { ComputeStrategy, SessionStatus } from "../compute/strategy";
import type { LimitsConfig } from "../config";
import { IllegalTransitionError } from "../errors";
import { decideLiveness, type LivenessThresholds } from "../liveness";
import { DEFAULT_LIMITS } from "../limits";
import type { Runtime } from "../runtime";
import type { TaskRecord } from "../tasks/record";
import { ACTIVE_STATUSES, isTerminal, TASK_STATUSES, type TaskStatus } from "../tasks/status";
import { TaskNotFoundError } from "./errors";
import { secondsSince } from "./load";

/** Carried from one poll to the next (a durable step result, so plain JSON). */
export interface PollCounters {
  pollErrors: number;
  finishedPolls: number;
}

export const FRESH_COUNTERS: PollCounters = { pollErrors: 0, finishedPolls: 0 };

export type PollResult =
  | { outcome: "continue"; counters: PollCounters }
  | { outcome: "ended"; status: TaskStatus }
  /** Lost to infrastructure: the task is STARTING again, as attempt `attempt`; the workflow starts it anew. */
  | { outcome: "requeued"; attempt: number };

export function livenessThresholds(limits: LimitsConfig, startupGraceSeconds = limits.startupGraceSeconds): LivenessThresholds {
  return {
    taskTimeoutSeconds: limits.taskTimeoutSeconds,
    heartbeatTimeoutSeconds: limits.heartbeatTimeoutSeconds,
    startupGraceSeconds,
    maxPollErrors: limits.maxPollErrors,
    maxFinishedPolls: limits.maxFinishedPolls,
  };
}

/** The counters after one poll: a streak resets as soon as a poll breaks it. */
export function nextCounters(prev: PollCounters, compute: SessionStatus | undefined, taskStatus: TaskStatus): PollCounters {
  return {
    pollErrors: compute ? 0 : prev.pollErrors + 1,
    finishedPolls: compute?.state === "EXITED" && !isTerminal(taskStatus) ? prev.finishedPolls + 1 : 0,
  };
}

export interface PollOptions {
  startupGraceSeconds?: number;
  /** The wake armed for after this poll: recorded on the task before it is read (orchestrator/wake.ts). */
  wakeToken?: string;
}

export async function pollTask(
  rt: Runtime,
  taskId: string,
  handle: SessionHandle,
  prev: PollCounters,
  options: PollOptions = {},
): Promise<PollResult> {
  const strategy = rt.strategy(handle.type) as ComputeStrategy;
  const what = BACKEND_NAMES[handle.type];
  if (options.wakeToken) {
    // Before the task is read: whoever ends the task after that read finds this token and wakes us.
    await rt.tasks.update(taskId, { wake_callback_id: options.wakeToken }, ACTIVE_STATUSES).catch((err) => {
      if (!(err instanceof IllegalTransitionError)) throw err;
    });
  }
  let compute: SessionStatus | undefined;
  let pollError: string | undefined;
  try {
    compute = await strategy.pollSession(handle);
  } catch (err) {
    pollError = (err as Error).message ?? String(err);
  }

  const task = await rt.tasks.get(taskId);
  if (!task) throw new TaskNotFoundError(taskId);
  const counters = nextCounters(prev, compute, task.status);
  if (pollError && counters.pollErrors === 1) {
    await rt.events.append(taskId, "error", `could not read the ${what}'s status: ${pollError}`);
  }

  // The exit code counts as much as the agent's own word: keep it on the record whenever the compute reports one.
  const exitCode = compute?.state === "EXITED" ? compute.exitCode : undefined;
  if (exitCode !== undefined && task.exit_code !== exitCode) {
    await rt.tasks.update(taskId, { exit_code: exitCode }, TASK_STATUSES).catch((err) => {
      if (!(err instanceof IllegalTransitionError)) throw err;
    });
  }

  const now = rt.now();
  const decision = decideLiveness(
    {
      backend: handle.type,
      taskStatus: task.status,
      heartbeatAgeSeconds: secondsSince(task.agent_heartbeat_at, now),
      sinceStartSeconds: secondsSince(task.started_at, now) ?? 0,
      elapsedSeconds: secondsSince(task.created_at, now) ?? 0,
      compute,
      consecutivePollErrors: counters.pollErrors,
      consecutiveFinishedPolls: counters.finishedPolls,
      lastPollError: pollError,
      infraRetriesLeft: strategy.startsNewAttempts ? Math.max(0, (rt.config.limits.infraRetries ?? DEFAULT_LIMITS.infraRetries ?? 0) - (task.attempt ?? 0)) : 0,
    },
    livenessThresholds(rt.config.limits, options.startupGraceSeconds),
  );

  switch (decision.action) {
    case "continue":
      return { outcome: "continue", counters };
    case "done":
      return { outcome: "ended", status: decision.status };
    case "fail":
      return stopAs(rt, taskId, handle, strategy, "FAILED", decision.reason, exitCode);
    case "requeue":
      return requeue(rt, task, handle, strategy, decision.reason);
    case "timeout":
      return stopAs(rt, taskId, handle, strategy, "TIMED_OUT", decision.reason, exitCode);
    default: {
      const unhandled: never = decision;
      throw new Error(`unknown liveness decision ${JSON.stringify(unhandled)}`);
    }
  }
}

/**
 * End the task as `to`, then stop its compute. The status is written first: if the agent finished in the
 * meantime its own terminal status stands, and the compute is left to exit by itself.
 */
async function stopAs(
  rt: Runtime,
  taskId: string,
  handle: SessionHandle,
  strategy: ComputeStrategy,
  to: "FAILED" | "TIMED_OUT",
  reason: string,
  exitCode: number | undefined,
): Promise<PollResult> {
  try {
    await rt.tasks.transition(taskId, to, { error_message: reason, ...(exitCode !== undefined ? { exit_code: exitCode } : {}) }, [
      "STARTING",
      "RUNNING",
    ]);
  } catch (err) {
    if (!(err instanceof IllegalTransitionError) || err.actual === undefined || !isTerminal(err.actual)) throw err;
    return { outcome: "ended", status: err.actual };
  }
  await rt.events.append(taskId, "status", reason, { status: to });
  try {
    await strategy.stopSession(handle, reason);
  } catch (err) {
    // Finalize tries the stop again; the verdict stands either way.
    await rt.events.append(taskId, "error", `could not stop the ${BACKEND_NAMES[handle.type]}: ${(err as Error).message}`);
  }
  return { outcome: "ended", status: to };
}

/**
 * Infrastructure took the compute (Spot interruption, instance terminated, undeliverable command): the agent is
 * not at fault, so the task runs again as a new attempt, with the lost one on its record. The old compute is
 * stopped (and its EC2 lease released) first, then the record forgets it in one conditional write.
 */
async function requeue(rt: Runtime, task: TaskRecord, handle: SessionHandle, strategy: ComputeStrategy, reason: string): Promise<PollResult> {
  try {
    await strategy.stopSession(handle, reason);
  } catch (err) {
    await rt.events.append(task.task_id, "error", `could not stop the lost ${BACKEND_NAMES[handle.type]}: ${(err as Error).message}`);
  }
  const attempt = (task.attempt ?? 0) + 1;
  const fields = {
    attempt,
    attempts: [
      ...(task.attempts ?? []),
      { attempt: attempt - 1, compute_type: handle.type, ...(task.session_id ? { session_id: task.session_id } : {}), reason, ended_at: rt.now().toISOString() },
    ],
    compute_type: null,
    compute_metadata: null,
    session_id: null,
    started_at: null,
    agent_heartbeat_at: null,
    exit_code: null,
  };
  try {
    if (task.status === "RUNNING") await rt.tasks.transition(task.task_id, "STARTING", fields, ["RUNNING"]);
    else await rt.tasks.update(task.task_id, fields, ["STARTING"]);
  } catch (err) {
    if (!(err instanceof IllegalTransitionError) || err.actual === undefined || !isTerminal(err.actual)) throw err;
    return { outcome: "ended", status: err.actual };
  }
  await rt.events.append(task.task_id, "status", `${reason}; re-queued as attempt ${attempt + 1}`, { status: "STARTING", data: { attempt } });
  return { outcome: "requeued", attempt };
}
