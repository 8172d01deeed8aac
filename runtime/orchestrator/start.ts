/**
 * The start step: resolve the backend, start the compute, persist its handle on the task record.
 * Idempotent: a handle already on the record is returned as is, and every strategy derives its session from the
 * task id (ECS clientToken, EC2 lease per task, AgentCore session id, local run folder), so a step re-run after
 * a crash between "started" and "persisted" finds the same session instead of starting a second one. AgentCore,
 * whose invocation is not idempotent, is never invoked again once an invocation may have been sent.
 */
import { prepareAgentChannel } from "../channel/dispatch";
import { BACKEND_NAMES, type SessionHandle } from "../compute/handle";
import { resolveBackend, type BackendChoice } from "../compute/resolve";
import type { ComputeStrategy, StartRequest } from "../compute/strategy";
import { IllegalTransitionError, isTransientError, NoCapacityError, wasRefused } from "../errors";
import { agentPayload } from "../payload/agent-payload";
import type { Runtime } from "../runtime";
import type { TaskRecord } from "../tasks/record";
import { isTerminal, type TaskStatus } from "../tasks/status";
import { capacityFailureReason } from "../fleet/capacity-error";
import { TaskNotFoundError } from "./errors";
import { secondsSince } from "./load";

export type StartResult =
  | { outcome: "started"; handle: SessionHandle }
  /** EC2 only: no ready instance; not a failure, the orchestrator waits and tries again. */
  | { outcome: "waiting-for-capacity"; fleet: string }
  | { outcome: "ended"; status: TaskStatus };

/** The id people and logs know a session by, per backend. */
export function sessionIdOf(handle: SessionHandle): string {
  switch (handle.type) {
    case "agentcore":
      return handle.sessionId;
    case "ecs":
      return handle.taskArn;
    case "ec2":
      return handle.commandId;
    case "local":
      return `pid:${handle.pid}`;
    default: {
      const unhandled: never = handle;
      throw new Error(`unknown session handle type '${(unhandled as SessionHandle).type}'`);
    }
  }
}

export interface StartOptions {
  /**
   * The wake armed for a wait for capacity: recorded on the task before the start asks for an instance, so the
   * fleet's dispatcher, binding one to this task later, wakes it at once (orchestrator/wake.ts).
   */
  wakeToken?: string;
}

export async function startTask(rt: Runtime, taskId: string, options: StartOptions = {}): Promise<StartResult> {
  const task = await rt.tasks.get(taskId);
  if (!task) throw new TaskNotFoundError(taskId);
  if (isTerminal(task.status)) return { outcome: "ended", status: task.status };
  if (task.compute_metadata) return { outcome: "started", handle: task.compute_metadata };
  if (task.status !== "STARTING") {
    throw new IllegalTransitionError(taskId, "STARTING", task.status);
  }

  const timeout = rt.config.limits.taskTimeoutSeconds;
  const elapsed = secondsSince(task.created_at, rt.now()) ?? 0;
  if (elapsed >= timeout) {
    // A wait for an EC2 instance that EC2 could not launch fails with EC2's own reason.
    if (task.capacity_error) return end(rt, task, "FAILED", capacityFailureReason(task.fleet, task.capacity_error, elapsed, timeout));
    return end(rt, task, "TIMED_OUT", `the task's compute had not started after ${Math.round(elapsed)}s, past its ${timeout}s timeout`);
  }

  let choice: BackendChoice;
  try {
    choice = await chooseBackend(rt, task);
  } catch (err) {
    return end(rt, task, "FAILED", `could not choose a backend: ${(err as Error).message}`);
  }
  const what = BACKEND_NAMES[choice.backend];
  const strategy = rt.strategy(choice.backend) as ComputeStrategy;
  const payloadUri = task.payload_uri ?? (await writePayload(rt, task));
  let payloadUrl: string;
  try {
    payloadUrl = await prepareAgentChannel(rt, task, payloadUri);
  } catch (err) {
    if (isTransientError(err)) throw err;
    return end(rt, task, "FAILED", `could not prepare the agent's payload: ${(err as Error).message}`);
  }
  const request = { task: { ...task, backend: choice.backend, fleet: choice.fleet, payload_uri: payloadUri }, payloadUrl };

  if (options.wakeToken) {
    await rt.tasks.update(taskId, { wake_callback_id: options.wakeToken }, ["STARTING"]).catch((err) => {
      if (!(err instanceof IllegalTransitionError)) throw err;
    });
  }
  let handle: SessionHandle;
  try {
    handle = await startSession(rt, task, strategy, request);
  } catch (err) {
    if (err instanceof NoCapacityError) {
      // EC2's reason the fleet cannot grow, kept on the task while it is current (one write when it changes).
      if ((err.capacityError ?? null) !== (task.capacity_error ?? null)) {
        await rt.tasks.update(taskId, { capacity_error: err.capacityError ?? null }, ["STARTING"]).catch((e) => {
          if (!(e instanceof IllegalTransitionError)) throw e;
        });
      }
      return { outcome: "waiting-for-capacity", fleet: err.fleet };
    }
    return end(rt, task, "FAILED", `could not start the ${what}: ${(err as Error).message}`);
  }

  const handleFields = { compute_type: handle.type, compute_metadata: handle, session_id: sessionIdOf(handle) };
  try {
    await rt.tasks.update(taskId, { ...handleFields, started_at: rt.now().toISOString() }, ["STARTING", "RUNNING"]);
  } catch (err) {
    if (!(err instanceof IllegalTransitionError) || err.actual === undefined || !isTerminal(err.actual)) throw err;
    // The write is conditional on the status, so a cancel either landed before it (handled here: we stop what we
    // just started) or after it (the cancel sees the handle and stops the compute itself). No window is left.
    // The handle goes on the finished record first, so that if this stop fails, finalize can still find and stop it.
    await rt.tasks.update(taskId, handleFields, [err.actual]);
    if (err.actual === "CANCELLED") {
      await strategy.stopSession(handle, "task was cancelled while its compute was starting");
      await rt.events.append(taskId, "info", `stopped the ${what} that started as the task was cancelled`);
    }
    return { outcome: "ended", status: err.actual };
  }
  await rt.events.append(taskId, "dispatch", `started the ${what} ${sessionIdOf(handle)}`, {
    data: { compute_type: handle.type, session_id: sessionIdOf(handle) },
  });
  rt.metrics.count("TasksStarted", 1, { backend: handle.type });
  rt.metrics.flush();
  return { outcome: "started", handle };
}

/** The backend fixed at submit, else the repo blueprint's, else the stack default. */
export async function chooseBackend(rt: Runtime, task: TaskRecord): Promise<BackendChoice> {
  const blueprint = task.backend ? undefined : await rt.repos.get(task.repo_url);
  return resolveBackend({ backend: task.backend, fleet: task.fleet }, blueprint, rt.config);
}

/**
 * Start the compute, never twice. The task is marked start_sent_at before the request goes out. A backend whose
 * start is idempotent by itself is simply asked again on a re-run; one whose start is not (resumeStart) is asked
 * only while nothing may have been sent: once a request may have landed — a re-run after the mark, or an error
 * that leaves it unknown (5xx, timeout, network) — its session is adopted instead, and the agent's own reports
 * (or their absence, past the startup grace) tell the rest.
 */
async function startSession(rt: Runtime, task: TaskRecord, strategy: ComputeStrategy, request: StartRequest): Promise<SessionHandle> {
  const resume = strategy.resumeStart?.bind(strategy);
  if (resume && task.start_sent_at) {
    await rt.events.append(task.task_id, "info", `a start of this task may already have been sent (${task.start_sent_at}); adopting its session instead of sending another`);
    return resume(request);
  }
  // The backend goes with the mark: finalize asks that backend for compute a crashed start may have left running.
  const { backend, fleet } = request.task;
  await rt.tasks.update(task.task_id, { start_sent_at: rt.now().toISOString(), backend, ...(fleet ? { fleet } : {}) }, ["STARTING"]);
  const start = () => strategy.startSession(request);
  if (!resume) return startWithOneRetry(start, isTransientError);
  try {
    return await startWithOneRetry(start, wasRefused);
  } catch (err) {
    if (wasRefused(err)) throw err;
    await rt.events.append(task.task_id, "error", `the start request's outcome is unknown (${(err as Error).message}); adopting its session, whose agent must report within the startup grace`);
    return resume(request);
  }
}

/** Errors `retryable` accepts (throttling, 5xx, network) get exactly one more attempt; the SDK has already retried inside. */
async function startWithOneRetry<T>(start: () => Promise<T>, retryable: (err: unknown) => boolean): Promise<T> {
  try {
    return await start();
  } catch (err) {
    if (!retryable(err)) throw err;
    return start();
  }
}

/** Submit normally writes the payload; a task created without one gets it built from its record. */
async function writePayload(rt: Runtime, task: TaskRecord): Promise<string> {
  const uri = await rt.payloads.put(task.task_id, agentPayload(task));
  await rt.tasks.update(task.task_id, { payload_uri: uri }, ["STARTING"]);
  return uri;
}

async function end(rt: Runtime, task: TaskRecord, to: "FAILED" | "TIMED_OUT", reason: string): Promise<StartResult> {
  try {
    await rt.tasks.transition(task.task_id, to, { error_message: reason }, ["STARTING"]);
  } catch (err) {
    if (!(err instanceof IllegalTransitionError) || err.actual === undefined || !isTerminal(err.actual)) throw err;
    return { outcome: "ended", status: err.actual };
  }
  await rt.events.append(task.task_id, "status", reason, { status: to });
  return { outcome: "ended", status: to };
}
