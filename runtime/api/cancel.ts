/** POST /tasks/{id}/cancel: the caller's own, unfinished task only. */
import { IllegalTransitionError } from "../errors";
import { TaskNotCancellableError, TaskNotFoundError } from "../orchestrator/errors";
import type { Runtime } from "../runtime";
import { isTerminal } from "../tasks/status";
import { HttpError, json, type ApiRequest, type ApiResponse } from "./http";
import { parseJsonBody, validateCancelRequest } from "./validation";
import { ownTask, toTaskView } from "./views";

export async function cancelRoute(runtime: Runtime, taskId: string, req: ApiRequest): Promise<ApiResponse> {
  const { reason } = validateCancelRequest(parseJsonBody(req.body, true));
  const task = await ownTask(runtime, taskId, req.userId);
  if (isTerminal(task.status)) {
    throw new HttpError(409, `task ${taskId} is already ${task.status}; only SUBMITTED, QUEUED, STARTING or RUNNING tasks can be cancelled`, undefined, {
      status: task.status,
    });
  }
  // Loaded on use: the orchestrator's cancel and release code, which submit and list never need. The task's backend
  // is then loaded by the strategy registry when the cancel first asks for it.
  const { cancelTask } = await import("../orchestrator/cancel");
  try {
    await cancelTask(runtime, taskId, { userId: req.userId, ...(reason ? { reason } : {}) });
  } catch (err) {
    if (err instanceof TaskNotFoundError) throw new HttpError(404, `task ${taskId} not found`);
    if (err instanceof TaskNotCancellableError) {
      throw new HttpError(409, `task ${taskId} finished (${err.status}) before it could be cancelled`, undefined, { status: err.status });
    }
    if (err instanceof IllegalTransitionError) {
      throw new HttpError(409, `task ${taskId} could not be cancelled: ${err.message}`, undefined, { status: err.actual });
    }
    throw err;
  }
  const after = await runtime.tasks.get(taskId);
  return json(200, { task: toTaskView(after ?? task) });
}
