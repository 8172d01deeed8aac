import type { TaskRecord } from "../tasks/record";
import type { BackendType, HandleOf, SessionHandle } from "./handle";

/**
 * Raw compute state as a backend reports it. The strategy reports; the orchestrator (liveness) interprets.
 * - PENDING: accepted, not yet running (ECS PROVISIONING, SSM Pending/Delayed, just dispatched).
 * - RUNNING: the compute is executing the agent.
 * - EXITED: the compute finished; exitCode tells how, when known.
 * - LOST: the compute is gone for a reason outside the agent (Spot interruption, instance terminated,
 *   undeliverable command, session not found).
 * - UNOBSERVABLE: the backend offers no status for this compute (AgentCore sessions): liveness relies
 *   on heartbeats alone.
 */
export type ComputeState = "PENDING" | "RUNNING" | "EXITED" | "LOST" | "UNOBSERVABLE";

export interface SessionStatus {
  state: ComputeState;
  exitCode?: number;
  /** The backend's own words (stoppedReason, SSM StatusDetails, signal), for messages and events. */
  reason?: string;
  /** The backend's raw status string, e.g. "STOPPED" or "TimedOut". */
  raw?: string;
}

export interface StartRequest {
  task: TaskRecord;
  /**
   * What the agent is handed as AGENT_PAYLOAD_URL: a short-lived presigned HTTPS GET of its payload, or an absolute
   * file path (local). A secret while it lasts (the payload holds the task's token): never log it or put it in an event.
   */
  payloadUrl: string;
}

export interface ComputeStrategy<T extends BackendType = BackendType> {
  readonly type: T;
  startSession(request: StartRequest): Promise<HandleOf<T>>;
  /**
   * Only for a backend whose start request cannot be repeated safely (AgentCore: a second InvokeAgentRuntime of
   * the session would start a second agent in it). The handle of the session that an earlier start of this task
   * may have created; the start step adopts it instead of sending again once a request may have gone out.
   * Backends whose start is idempotent by itself (ECS clientToken, the EC2 lease's recorded command) leave it out.
   */
  resumeStart?(request: StartRequest): HandleOf<T>;
  /**
   * Compute a start of this task may have left running without its handle reaching the task record (the
   * orchestrator died between the start request and the handle write), found by asking the backend by task id.
   * Only compute that may still run is returned; finalize stops it. Empty when there is none.
   */
  findUnrecordedSessions?(task: TaskRecord): Promise<HandleOf<T>[]>;
  pollSession(handle: HandleOf<T>): Promise<SessionStatus>;
  /** Stop the compute. Must tolerate compute that has already stopped. */
  stopSession(handle: HandleOf<T>, reason: string): Promise<void>;
  /**
   * True when a start for a re-queued attempt (task.attempt > 0) starts new compute rather than finding the lost
   * one again: only such backends re-queue a task whose compute was lost to infrastructure.
   */
  readonly startsNewAttempts?: boolean;
  /**
   * Give back what the backend holds for the task beyond its session (EC2: the instance lease, or its place in the
   * fleet's queue). Finalize calls it for every task it ends, with or without a handle: a start can take capacity
   * and fail before its handle is saved (orchestrator/release.ts). Idempotent; a task that holds nothing is a
   * no-op. Backends that hold nothing beyond the session leave it out.
   */
  releaseTask?(task: TaskRecord): Promise<void>;
}

export type AnyStrategy = { [T in BackendType]: ComputeStrategy<T> }[BackendType];

export type { SessionHandle };
