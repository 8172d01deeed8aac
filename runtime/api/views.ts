/** The read routes (GET /tasks, /tasks/{id}, /tasks/{id}/events) and what the API shows of a record. */
import type { Runtime } from "../runtime";
import type { TaskRecord } from "../tasks/record";
import { HttpError, json, type ApiResponse } from "./http";
import { validateListQuery, validatePageQuery } from "./validation";

/** The record as the API writes it: the fingerprint of the submit body lets a replayed key be compared. */
export type SubmittedRecord = TaskRecord & { request_hash?: string };

export async function listTasks(runtime: Runtime, userId: string, query: Record<string, string | undefined>): Promise<ApiResponse> {
  const q = validateListQuery(query);
  const page = await runtime.tasks.listByUser(userId, { limit: q.limit, status: q.status, nextToken: q.nextToken });
  return json(200, {
    // The store queries by user already; the filter keeps a bug there from ever leaking another user's task.
    tasks: page.items.filter((t) => t.user_id === userId).map(toTaskView),
    ...(page.nextToken ? { next_token: page.nextToken } : {}),
  });
}

export async function getTask(runtime: Runtime, taskId: string, userId: string): Promise<ApiResponse> {
  return json(200, { task: toTaskView(await ownTask(runtime, taskId, userId)) });
}

export async function listEvents(runtime: Runtime, taskId: string, userId: string, query: Record<string, string | undefined>): Promise<ApiResponse> {
  const page = validatePageQuery(query);
  await ownTask(runtime, taskId, userId);
  const events = await runtime.events.list(taskId, page);
  return json(200, {
    events: events.items.map(({ ttl: _ttl, ...event }) => event),
    ...(events.nextToken ? { next_token: events.nextToken } : {}),
  });
}

export /** A task the caller may see: another user's task is indistinguishable from a missing one. */
async function ownTask(runtime: Runtime, taskId: string, userId: string): Promise<TaskRecord> {
  const task = await runtime.tasks.get(taskId);
  if (!task || task.user_id !== userId) throw new HttpError(404, `task ${taskId} not found`);
  return task;
}

/** What the API shows of a record: everything but internal bookkeeping. */
export function toTaskView(record: TaskRecord): Record<string, unknown> {
  const {
    ttl: _ttl,
    request_hash: _hash,
    payload_uri: _payload,
    agent_token_sha256: _token,
    agent_report_tokens: _bucket,
    agent_report_at_ms: _bucketAt,
    waiting_since: _waiting,
    ...view
  } = record as SubmittedRecord & Record<string, unknown>;
  return view;
}
