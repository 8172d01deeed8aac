import type { LimitsConfig } from "../config";
import { IllegalTransitionError } from "../errors";
import { clampPollInterval } from "../limits";
import type { Runtime } from "../runtime";
import { ACTIVE_STATUSES, type TaskStatus } from "../tasks/status";
import { TaskNotFoundError } from "./errors";

/** What the orchestrator needs to know before it starts: small and JSON-safe, as every step result must be. */
export interface LoadedTask {
  taskId: string;
  userId: string;
  status: TaskStatus;
  createdAt: string;
  /** Seconds between polls for this task: the repo blueprint's value, else the stack's; clamped to 5–300. */
  pollIntervalSeconds: number;
  /** How long its started session may take to report RUNNING: the repo blueprint's value, else the stack's. */
  startupGraceSeconds: number;
}

/** The poll interval a task gets: a repo blueprint may override the stack default; both are clamped. */
export function pollIntervalFor(limits: Pick<LimitsConfig, "pollIntervalSeconds">, blueprintSeconds?: number): number {
  return clampPollInterval(blueprintSeconds ?? limits.pollIntervalSeconds);
}

/**
 * Read the task and its blueprint. The durable execution's ARN is recorded on an active task so that the
 * reconciler can ask Lambda whether the task's orchestrator still runs (GetDurableExecution).
 */
export async function loadTask(rt: Runtime, taskId: string, executionArn?: string): Promise<LoadedTask> {
  let task = await rt.tasks.get(taskId);
  if (!task) throw new TaskNotFoundError(taskId);
  if (executionArn && task.execution_arn !== executionArn && ACTIVE_STATUSES.includes(task.status)) {
    task = await rt.tasks.update(taskId, { execution_arn: executionArn }, ACTIVE_STATUSES).catch((err) => {
      if (err instanceof IllegalTransitionError) return task!; // it ended meanwhile; nothing to record
      throw err;
    });
  }
  const blueprint = await rt.repos.get(task.repo_url);
  return {
    taskId,
    userId: task.user_id,
    status: task.status,
    createdAt: task.created_at,
    pollIntervalSeconds: pollIntervalFor(rt.config.limits, blueprint?.poll_interval_seconds),
    startupGraceSeconds: blueprint?.startup_grace_seconds ?? rt.config.limits.startupGraceSeconds,
  };
}

/** Seconds (with fractions) from an ISO timestamp to `now`: 0 for a future one, undefined for a missing or unparseable one. */
export function secondsSince(iso: string | undefined, now: Date): number | undefined {
  if (!iso) return undefined;
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return undefined;
  return Math.max(0, (now.getTime() - t) / 1000);
}
