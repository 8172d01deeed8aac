import { BACKEND_NAMES, type BackendType } from "./compute/handle";
import type { SessionStatus } from "./compute/strategy";
import { isTerminal, type TaskStatus } from "./tasks/status";

/**
 * Is a task's agent still alive? One pure decision for every backend; the orchestrator's await step feeds
 * it and acts on the answer. Callers poll the compute *before* reading the task record, so a terminal status
 * the agent wrote before exiting is always seen.
 */
export interface LivenessThresholds {
  taskTimeoutSeconds: number;
  heartbeatTimeoutSeconds: number;
  /** How long a started session may go without its first RUNNING/heartbeat (image pulls, Fargate provisioning). */
  startupGraceSeconds: number;
  maxPollErrors: number;
  maxFinishedPolls: number;
}

export interface LivenessInput {
  backend: BackendType;
  taskStatus: TaskStatus;
  /** Seconds since the agent's last heartbeat; undefined if it never sent one. */
  heartbeatAgeSeconds?: number;
  /** Seconds since the session was started. */
  sinceStartSeconds: number;
  /** Seconds since the task was submitted: the absolute timeout counts from here. */
  elapsedSeconds: number;
  /** This poll's compute status; undefined when the poll itself failed. */
  compute?: SessionStatus;
  /** Consecutive failed polls, including this one. */
  consecutivePollErrors: number;
  /** Consecutive polls (including this one) that saw the compute finished while the task was not terminal. */
  consecutiveFinishedPolls: number;
  lastPollError?: string;
}

export type LivenessDecision =
  | { action: "continue" }
  | { action: "done"; status: TaskStatus }
  | { action: "fail"; reason: string }
  | { action: "timeout"; reason: string };

export function decideLiveness(input: LivenessInput, t: LivenessThresholds): LivenessDecision {
  const what = BACKEND_NAMES[input.backend];
  if (isTerminal(input.taskStatus)) return { action: "done", status: input.taskStatus };

  if (input.elapsedSeconds >= t.taskTimeoutSeconds) {
    return { action: "timeout", reason: `task exceeded its ${t.taskTimeoutSeconds}s timeout; the ${what} was stopped` };
  }

  const compute = input.compute;
  if (compute?.state === "LOST") {
    return { action: "fail", reason: `the ${what} was lost before the agent finished${detail(compute.reason)}` };
  }
  if (compute?.state === "EXITED") {
    if (compute.exitCode !== undefined && compute.exitCode !== 0) {
      return {
        action: "fail",
        reason: `the agent exited with code ${compute.exitCode} on the ${what} without writing a terminal status${detail(compute.reason)}`,
      };
    }
    if (input.consecutiveFinishedPolls >= t.maxFinishedPolls) {
      return {
        action: "fail",
        reason: `the ${what} finished${compute.exitCode === 0 ? " (exit 0)" : ""} but the task had no terminal status after ${input.consecutiveFinishedPolls} polls${detail(compute.reason)}`,
      };
    }
    return { action: "continue" };
  }

  if (!compute && input.consecutivePollErrors >= t.maxPollErrors) {
    return {
      action: "fail",
      reason: `could not read the ${what}'s status for ${input.consecutivePollErrors} consecutive polls${detail(input.lastPollError)}`,
    };
  }

  const stale = staleHeartbeat(input, t);
  if (stale) return { action: "fail", reason: `the agent on the ${what} ${stale}` };
  return { action: "continue" };
}

/**
 * The heartbeat verdict for a non-terminal task, shared by the orchestrator's polls and the reconciler.
 * A heartbeat once received must stay fresh in any status (a STARTING agent that beat once and went silent is as
 * dead as a RUNNING one); a RUNNING task that never beat is judged from its start; a STARTING one that never beat
 * gets the startup grace. Returns what is wrong, or undefined.
 */
export function staleHeartbeat(
  input: Pick<LivenessInput, "taskStatus" | "heartbeatAgeSeconds" | "sinceStartSeconds">,
  t: Pick<LivenessThresholds, "heartbeatTimeoutSeconds" | "startupGraceSeconds">,
): string | undefined {
  if (isTerminal(input.taskStatus)) return undefined;
  const age = input.heartbeatAgeSeconds ?? (input.taskStatus === "RUNNING" ? input.sinceStartSeconds : undefined);
  if (age !== undefined && age > t.heartbeatTimeoutSeconds) {
    return `sent no heartbeat for ${Math.round(age)}s (limit ${t.heartbeatTimeoutSeconds}s)`;
  }
  if (age === undefined && input.sinceStartSeconds > t.startupGraceSeconds) {
    return `did not report RUNNING within ${t.startupGraceSeconds}s of start`;
  }
  return undefined;
}

function detail(text: string | undefined): string {
  return text ? `: ${text}` : "";
}
