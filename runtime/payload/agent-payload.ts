/** The agent's payload, built in one place from a task's work fields: submit and a start without a payload use it. */
import type { AgentPayload } from "../ports";
import type { TaskRecord } from "../tasks/record";

/** The fields of a task that describe its work: the payload carries them, the task record keeps them. */
export type TaskWork = Pick<TaskRecord, "task_id" | "repo_url" | "prompt" | "branch" | "issue_number" | "model" | "max_turns" | "max_budget_usd">;

/** The payload of a task; a field the task does not set is absent, not undefined. */
export function agentPayload(task: TaskWork, context?: Record<string, unknown>): AgentPayload {
  return {
    task_id: task.task_id,
    repo_url: task.repo_url,
    prompt: task.prompt,
    ...(task.branch !== undefined ? { branch: task.branch } : {}),
    ...(task.issue_number !== undefined ? { issue_number: task.issue_number } : {}),
    ...(task.model !== undefined ? { model: task.model } : {}),
    ...(task.max_turns !== undefined ? { max_turns: task.max_turns } : {}),
    ...(task.max_budget_usd !== undefined ? { max_budget_usd: task.max_budget_usd } : {}),
    ...(context !== undefined ? { context } : {}),
  };
}
