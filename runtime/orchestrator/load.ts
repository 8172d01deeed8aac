import type { LimitsConfig } from "../config";
import { clampPollInterval } from "../limits";
import type { Runtime } from "../runtime";
import type { TaskStatus } from "../tasks/status";
import { TaskNotFoundError } from "./errors";

/** What the orchestrator needs to know before it starts: small and JSON-safe, as every step result must be. */
export interface LoadedTask {
  taskId: string;
  userId: string;
  status: TaskStatus;
  createdAt: string;
  /** Seconds between polls for this task: the repo blueprint's value, else the stack's; clamped to 5–300. */
  pollIntervalSeconds: number;
}

/** The poll interval a task gets: a repo blueprint may override the stack default; both are clamped. */
export function pollIntervalFor(limits: Pick<LimitsConfig, "pollIntervalSeconds">, blueprintSeconds?: number): number {
  return clampPollInterval(blueprintSeconds ?? limits.pollIntervalSeconds);
}

export async function loadTask(rt: Runtime, taskId: string): Promise<LoadedTask> {
  const task = await rt.tasks.get(taskId);
  if (!task) throw new TaskNotFoundError(taskId);
  const blueprint = await rt.repos.get(task.repo_url);
  return {
    taskId,
    userId: task.user_id,
    status: task.status,
    createdAt: task.created_at,
    pollIntervalSeconds: pollIntervalFor(rt.config.limits, blueprint?.poll_interval_seconds),
  };
}

/** Seconds (with fractions) from an ISO timestamp to `now`: 0 for a future one, undefined for a missing or unparseable one. */
export function secondsSince(iso: string | undefined, now: Date): number | undefined {
  if (!iso) return undefined;
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return undefined;
  return Math.max(0, (now.getTime() - t) / 1000);
}
