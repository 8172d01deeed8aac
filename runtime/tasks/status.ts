/** Task lifecycle: the statuses and the only transitions the store will write. */

export const TASK_STATUSES = [
  "SUBMITTED",
  "QUEUED",
  "STARTING",
  "RUNNING",
  "COMPLETED",
  "FAILED",
  "CANCELLED",
  "TIMED_OUT",
] as const;

export type TaskStatus = (typeof TASK_STATUSES)[number];

export const TERMINAL_STATUSES: readonly TaskStatus[] = ["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"];
export const ACTIVE_STATUSES: readonly TaskStatus[] = ["SUBMITTED", "QUEUED", "STARTING", "RUNNING"];

/**
 * from → allowed next statuses. STARTING → COMPLETED/FAILED is allowed because a fast agent (or one that
 * crashes before its first write) can finish before anyone observed RUNNING.
 */
export const TRANSITIONS: Readonly<Record<TaskStatus, readonly TaskStatus[]>> = {
  SUBMITTED: ["QUEUED", "STARTING", "FAILED", "CANCELLED"],
  QUEUED: ["STARTING", "FAILED", "CANCELLED"],
  STARTING: ["RUNNING", "COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"],
  // RUNNING → STARTING: the compute was lost to infrastructure and the task is re-queued as a new attempt.
  RUNNING: ["STARTING", "COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"],
  COMPLETED: [],
  FAILED: [],
  CANCELLED: [],
  TIMED_OUT: [],
};

export function isTerminal(status: TaskStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}

export function canTransition(from: TaskStatus, to: TaskStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

/** Every status from which `to` may be reached: the condition of a conditional write. */
export function allowedPredecessors(to: TaskStatus): TaskStatus[] {
  return TASK_STATUSES.filter((from) => canTransition(from, to));
}

export function isTaskStatus(value: unknown): value is TaskStatus {
  return typeof value === "string" && (TASK_STATUSES as readonly string[]).includes(value);
}
