/**
 * The admit step: a task may start only while its user holds fewer than limits.maxConcurrentPerUser slots.
 * Over the cap it waits as QUEUED, and queued tasks are admitted first-in first-out: only the user's oldest
 * queued task may take a freed slot, and a new submission queues behind any task already waiting.
 */
import { IllegalTransitionError } from "../errors";
import type { Runtime } from "../runtime";
import type { TaskRecord } from "../tasks/record";
import { isTerminal, type TaskStatus } from "../tasks/status";
import { TaskNotFoundError } from "./errors";
import { secondsSince } from "./load";
import { ConcurrencySlots } from "./slots";
import { wakeOrchestrator } from "./wake";

export type AdmitResult =
  | { outcome: "admitted" }
  | { outcome: "queued" }
  /** The task reached a terminal status (cancelled while waiting, or failed by the queue timeout). */
  | { outcome: "ended"; status: TaskStatus };

type QueueKey = Pick<TaskRecord, "task_id" | "created_at">;

/**
 * May this task try for a slot, given the user's oldest queued task? Yes if nobody waits, if it is that task,
 * or if it was submitted before it (a late orchestrator must not lose its place to a younger task).
 */
export function isFirstInLine(task: QueueKey, oldestQueued: QueueKey | undefined): boolean {
  if (!oldestQueued || oldestQueued.task_id === task.task_id) return true;
  if (task.created_at !== oldestQueued.created_at) return task.created_at < oldestQueued.created_at;
  return task.task_id < oldestQueued.task_id;
}

export interface AdmitOptions {
  /**
   * The wake armed for a queued task's next wait: recorded on the task before it tries for a slot again, so that
   * whoever frees one of the user's slots after that try wakes it at once (wakeNextQueued).
   */
  wakeToken?: string;
}

export async function admitTask(rt: Runtime, taskId: string, options: AdmitOptions = {}): Promise<AdmitResult> {
  const task = await rt.tasks.get(taskId);
  if (!task) throw new TaskNotFoundError(taskId);
  if (isTerminal(task.status)) return { outcome: "ended", status: task.status };
  // A replayed step: admission already happened.
  if (task.status === "STARTING" || task.status === "RUNNING") return { outcome: "admitted" };
  if (task.status === "QUEUED" && options.wakeToken) {
    // Before the claim: a slot freed after this write wakes us; one freed before it, the claim below takes.
    try {
      await rt.tasks.update(taskId, { wake_callback_id: options.wakeToken }, ["QUEUED"]);
    } catch (err) {
      if (!(err instanceof IllegalTransitionError) || err.actual === undefined) throw err;
      if (isTerminal(err.actual)) return { outcome: "ended", status: err.actual };
    }
  }

  const limits = rt.config.limits;
  const waited = secondsSince(task.created_at, rt.now()) ?? 0;
  if (waited >= limits.taskTimeoutSeconds) {
    // QUEUED → TIMED_OUT is not a legal move (nothing ran); the task fails, saying why.
    return fail(rt, task, `the task waited ${Math.round(waited)}s for a concurrency slot, past its ${limits.taskTimeoutSeconds}s timeout`);
  }

  const slots = new ConcurrencySlots(rt.config);
  // A read of this user's queue alone (the by-user-waiting index), never of everyone's.
  const first = isFirstInLine(task, await rt.tasks.oldestQueued(task.user_id));
  if (!first || !(await slots.claim(task.user_id, taskId, limits.maxConcurrentPerUser))) {
    return queue(rt, task, first ? `user ${task.user_id} has ${limits.maxConcurrentPerUser} tasks running (the limit)` : "older tasks of this user are queued");
  }

  try {
    await rt.tasks.transition(taskId, "STARTING", {}, ["SUBMITTED", "QUEUED"]);
  } catch (err) {
    if (!(err instanceof IllegalTransitionError) || err.actual === undefined) throw err;
    if (err.actual === "STARTING" || err.actual === "RUNNING") return { outcome: "admitted" };
    // Cancelled between our read and the claim: the slot we just took must not leak.
    await slots.release(task.user_id, taskId);
    return { outcome: "ended", status: err.actual };
  }
  await rt.events.append(taskId, "status", "admitted; starting the compute", { status: "STARTING" });
  return { outcome: "admitted" };
}

async function queue(rt: Runtime, task: TaskRecord, why: string): Promise<AdmitResult> {
  if (task.status === "QUEUED") return { outcome: "queued" };
  try {
    await rt.tasks.transition(task.task_id, "QUEUED", {}, ["SUBMITTED"]);
  } catch (err) {
    if (!(err instanceof IllegalTransitionError) || err.actual === undefined) throw err;
    if (isTerminal(err.actual)) return { outcome: "ended", status: err.actual };
    if (err.actual === "QUEUED") return { outcome: "queued" };
    throw err;
  }
  await rt.events.append(task.task_id, "status", `queued: ${why}`, { status: "QUEUED" });
  return { outcome: "queued" };
}

/**
 * A slot of `userId` was just given back: wake the user's oldest queued task, whose re-check takes it. Never throws
 * (a lost wake costs that task one safety-net interval).
 */
export async function wakeNextQueued(rt: Runtime, userId: string): Promise<void> {
  try {
    const next = await rt.tasks.oldestQueued(userId);
    if (next) await wakeOrchestrator(rt, next.task_id);
  } catch {
    // The queued task's own re-check finds the slot.
  }
}

async function fail(rt: Runtime, task: TaskRecord, reason: string): Promise<AdmitResult> {
  try {
    await rt.tasks.transition(task.task_id, "FAILED", { error_message: reason }, ["SUBMITTED", "QUEUED"]);
  } catch (err) {
    if (!(err instanceof IllegalTransitionError) || err.actual === undefined) throw err;
    if (isTerminal(err.actual)) return { outcome: "ended", status: err.actual };
    if (err.actual === "STARTING" || err.actual === "RUNNING") return { outcome: "admitted" };
    throw err;
  }
  await rt.events.append(task.task_id, "status", reason, { status: "FAILED" });
  return { outcome: "ended", status: "FAILED" };
}
