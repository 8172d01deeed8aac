import type { TaskStatus } from "../tasks/status";

/** No task with this id (or not one the caller owns: the API must not reveal other users' tasks). */
export class TaskNotFoundError extends Error {
  constructor(readonly taskId: string) {
    super(`task ${taskId} does not exist`);
    this.name = "TaskNotFoundError";
  }
}

/** Cancel asked of a task that has already finished. */
export class TaskNotCancellableError extends Error {
  constructor(
    readonly taskId: string,
    readonly status: TaskStatus,
  ) {
    super(`task ${taskId} is already ${status}; only SUBMITTED, QUEUED, STARTING or RUNNING tasks can be cancelled`);
    this.name = "TaskNotCancellableError";
  }
}
