/**
 * The task API, framework-free: one function from a plain request to a plain response. The Lambda adapter
 * (lambda.ts) and the local platform's HTTP server both route here, so the deployed and the local API are
 * the same code.
 *
 *   POST /tasks                  submit (Idempotency-Key header honoured)
 *   GET  /tasks                  list the caller's tasks (?status=&limit=&next_token=)
 *   GET  /tasks/{id}             one task
 *   POST /tasks/{id}/cancel      cancel it (body: optional {reason})
 *   GET  /tasks/{id}/events      its events, oldest first (?limit=&next_token=)
 *   *    /agent/v1/…             the agent channel (runtime/channel/server.ts): token auth, no user
 */
import { createHash, randomUUID } from "node:crypto";
import { isChannelPath } from "../channel/paths";
import { BackendResolutionError, resolveBackend } from "../compute/resolve";
import { IllegalTransitionError, PayloadTooLargeError, TaskExistsError } from "../errors";
import type { Dispatcher } from "../orchestrator/dispatch";
import { TaskNotCancellableError, TaskNotFoundError } from "../orchestrator/errors";
import type { AgentPayload } from "../ports";
import type { Runtime } from "../runtime";
import type { TaskRecord } from "../tasks/record";
import { isTerminal } from "../tasks/status";
import {
  ValidationError,
  parseJsonBody,
  validateCancelRequest,
  validateIdempotencyKey,
  validateListQuery,
  validatePageQuery,
  validateSubmitRequest,
  validateTaskId,
  type SubmitRequest,
} from "./validation";

/** Starts the orchestration of a submitted task (LambdaDispatcher in the cloud, the local loop locally). */
export type TaskDispatcher = Dispatcher;

export interface ApiRequest {
  method: string;
  /** Path without query string, e.g. /tasks/abc/cancel. */
  path: string;
  query?: Record<string, string | undefined>;
  /** Header names in any case. */
  headers?: Record<string, string | undefined>;
  body?: string;
  /** The authenticated caller (empty on agent routes); the API never trusts a user named in the body. */
  userId: string;
}

export interface ApiResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * The record keeps a bounded preview of the prompt: a DynamoDB item is at most 400 KB and prompts may be
 * 1 MiB. The full prompt travels in the payload.
 */
export const PROMPT_PREVIEW_CHARS = 4096;

/** The record as the API writes it: the fingerprint of the submit body lets a replayed key be compared. */
type SubmittedRecord = TaskRecord & { request_hash?: string };

class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly field?: string,
    readonly extra?: Record<string, unknown>,
  ) {
    super(message);
  }
}

export async function handleApiRequest(runtime: Runtime, dispatcher: TaskDispatcher, request: ApiRequest): Promise<ApiResponse> {
  try {
    return await route(runtime, dispatcher, request);
  } catch (err) {
    return errorResponse(err);
  }
}

async function route(runtime: Runtime, dispatcher: TaskDispatcher, req: ApiRequest): Promise<ApiResponse> {
  if (isChannelPath(req.path)) {
    // Loaded on use: submit and list never need the channel.
    const { handleAgentRequest } = await import("../channel/server");
    return handleAgentRequest(runtime, req);
  }
  if (!req.userId) throw new HttpError(403, "no caller identity: requests must be signed (AWS IAM)");
  const method = req.method.toUpperCase();
  const parts = req.path.replace(/\/+$/, "").split("/").filter(Boolean);
  const query = req.query ?? {};
  if (parts[0] !== "tasks" || parts.length > 3) throw new HttpError(404, `no such route: ${method} ${req.path}`);

  if (parts.length === 1) {
    if (method === "POST") return submitTask(runtime, dispatcher, req);
    if (method === "GET") return listTasks(runtime, req.userId, query);
    throw methodNotAllowed(method, req.path, ["GET", "POST"]);
  }
  const taskId = validateTaskId(decodePathSegment(parts[1]));
  if (parts.length === 2) {
    if (method !== "GET") throw methodNotAllowed(method, req.path, ["GET"]);
    return json(200, { task: toTaskView(await ownTask(runtime, taskId, req.userId)) });
  }
  if (parts[2] === "cancel") {
    if (method !== "POST") throw methodNotAllowed(method, req.path, ["POST"]);
    return cancel(runtime, taskId, req);
  }
  if (parts[2] === "events") {
    if (method !== "GET") throw methodNotAllowed(method, req.path, ["GET"]);
    const page = validatePageQuery(query);
    await ownTask(runtime, taskId, req.userId);
    const events = await runtime.events.list(taskId, page);
    return json(200, {
      events: events.items.map(({ ttl: _ttl, ...event }) => event),
      ...(events.nextToken ? { next_token: events.nextToken } : {}),
    });
  }
  throw new HttpError(404, `no such route: ${method} ${req.path}`);
}

async function submitTask(runtime: Runtime, dispatcher: TaskDispatcher, req: ApiRequest): Promise<ApiResponse> {
  const input = validateSubmitRequest(parseJsonBody(req.body));
  const key = validateIdempotencyKey(header(req.headers, "idempotency-key"));
  const requestHash = fingerprint(input);
  // Same user + same key → the same task id, so the store's attribute_not_exists(task_id) decides races.
  const taskId = key ? sha256(`${req.userId}\n${key}`).slice(0, 32) : randomUUID().replace(/-/g, "");

  if (key) {
    const existing = (await runtime.tasks.get(taskId)) as SubmittedRecord | undefined;
    if (existing) return replay(dispatcher, existing, requestHash, key);
  }

  const blueprint = await runtime.repos.get(input.repo_url);
  let choice;
  try {
    choice = resolveBackend({ backend: input.backend, fleet: input.fleet }, blueprint, runtime.config);
  } catch (err) {
    if (!(err instanceof BackendResolutionError)) throw err;
    const tried = input.backend ?? blueprint?.backend ?? runtime.config.defaultBackend;
    throw new ValidationError(runtime.config.enabledBackends.includes(tried) ? "fleet" : "backend", err.message);
  }

  const model = input.model ?? blueprint?.model;
  const maxTurns = input.max_turns ?? blueprint?.max_turns;
  const maxBudget = input.max_budget_usd ?? blueprint?.max_budget_usd;
  const payload: AgentPayload = {
    task_id: taskId,
    repo_url: input.repo_url,
    prompt: input.prompt,
    ...(input.branch !== undefined ? { branch: input.branch } : {}),
    ...(input.issue_number !== undefined ? { issue_number: input.issue_number } : {}),
    ...(model !== undefined ? { model } : {}),
    ...(maxTurns !== undefined ? { max_turns: maxTurns } : {}),
    ...(maxBudget !== undefined ? { max_budget_usd: maxBudget } : {}),
    ...(input.context !== undefined ? { context: input.context } : {}),
  };
  // A racing submit with the same key but another body must not overwrite this payload: the object name
  // carries the body's fingerprint, and the loser deletes only its own object.
  let payloadUri: string;
  try {
    payloadUri = await runtime.payloads.put(key ? `${taskId}-${requestHash.slice(0, 12)}` : taskId, payload);
  } catch (err) {
    if (err instanceof PayloadTooLargeError) {
      throw new HttpError(413, `task payload (prompt + context) is too large: ${err.message}`, input.context ? "context" : "prompt");
    }
    throw err;
  }

  const now = runtime.now().toISOString();
  const record: SubmittedRecord = {
    task_id: taskId,
    user_id: req.userId,
    status: "SUBMITTED",
    repo_url: input.repo_url,
    prompt: input.prompt.length > PROMPT_PREVIEW_CHARS ? `${input.prompt.slice(0, PROMPT_PREVIEW_CHARS)}…` : input.prompt,
    ...(input.branch !== undefined ? { branch: input.branch } : {}),
    ...(input.issue_number !== undefined ? { issue_number: input.issue_number } : {}),
    ...(model !== undefined ? { model } : {}),
    ...(maxTurns !== undefined ? { max_turns: maxTurns } : {}),
    ...(maxBudget !== undefined ? { max_budget_usd: maxBudget } : {}),
    backend: choice.backend,
    ...(choice.fleet !== undefined ? { fleet: choice.fleet } : {}),
    payload_uri: payloadUri,
    ...(key ? { idempotency_key: key, request_hash: requestHash } : {}),
    created_at: now,
    updated_at: now,
  };
  try {
    await runtime.tasks.create(record);
  } catch (err) {
    if (!(err instanceof TaskExistsError) || !key) throw err;
    const winner = (await runtime.tasks.get(taskId)) as SubmittedRecord | undefined;
    if (winner?.payload_uri !== payloadUri) await runtime.payloads.delete(payloadUri);
    if (!winner) throw err;
    return replay(dispatcher, winner, requestHash, key);
  }

  const where = choice.fleet ? `${choice.backend} (fleet ${choice.fleet})` : choice.backend;
  await runtime.events.append(taskId, "status", `task submitted; backend ${where}`, {
    status: "SUBMITTED",
    data: { backend: choice.backend, ...(choice.fleet ? { fleet: choice.fleet } : {}) },
  });

  try {
    await dispatcher.dispatch(taskId);
  } catch (err) {
    const message = `could not start the orchestration of task ${taskId}: ${(err as Error).message}`;
    const failed = await failUndispatched(runtime, record, message);
    throw new HttpError(502, message, undefined, { task: toTaskView(failed) });
  }
  return json(201, { task: toTaskView(record) });
}

/** An undispatched task would sit in SUBMITTED forever: fail it, say why, and drop its payload. */
async function failUndispatched(runtime: Runtime, record: TaskRecord, message: string): Promise<TaskRecord> {
  let failed = record;
  try {
    failed = await runtime.tasks.transition(record.task_id, "FAILED", { error_message: message, finished_at: runtime.now().toISOString() }, ["SUBMITTED"]);
    await runtime.events.append(record.task_id, "error", message, { status: "FAILED" });
    if (record.payload_uri) await runtime.payloads.delete(record.payload_uri);
  } catch {
    // The task moved on (someone dispatched or cancelled it): leave it to its new owner.
    failed = (await runtime.tasks.get(record.task_id)) ?? record;
  }
  return failed;
}

async function replay(dispatcher: TaskDispatcher, existing: SubmittedRecord, requestHash: string, key: string): Promise<ApiResponse> {
  if (existing.request_hash !== requestHash) {
    throw new HttpError(
      409,
      `Idempotency-Key '${key}' was already used for task ${existing.task_id} with a different request body; use a new key for a new task`,
      "Idempotency-Key",
      { task_id: existing.task_id },
    );
  }
  // A client retries with its key when it got no answer — perhaps because the first request died between
  // writing the task and dispatching it. Dispatch is idempotent (one durable execution per task id; the local
  // dispatcher runs a task once), so a task still SUBMITTED is dispatched again rather than left stranded.
  if (existing.status === "SUBMITTED") await dispatcher.dispatch(existing.task_id);
  return json(200, { task: toTaskView(existing) }, { "Idempotency-Replayed": "true" });
}

async function listTasks(runtime: Runtime, userId: string, query: Record<string, string | undefined>): Promise<ApiResponse> {
  const q = validateListQuery(query);
  const page = await runtime.tasks.listByUser(userId, { limit: q.limit, status: q.status, nextToken: q.nextToken });
  return json(200, {
    // The store queries by user already; the filter keeps a bug there from ever leaking another user's task.
    tasks: page.items.filter((t) => t.user_id === userId).map(toTaskView),
    ...(page.nextToken ? { next_token: page.nextToken } : {}),
  });
}

async function cancel(runtime: Runtime, taskId: string, req: ApiRequest): Promise<ApiResponse> {
  const { reason } = validateCancelRequest(parseJsonBody(req.body, true));
  const task = await ownTask(runtime, taskId, req.userId);
  if (isTerminal(task.status)) {
    throw new HttpError(409, `task ${taskId} is already ${task.status}; only SUBMITTED, QUEUED, STARTING or RUNNING tasks can be cancelled`, undefined, {
      status: task.status,
    });
  }
  // Loaded on use: the cancel path pulls in every backend's stop code, which submit and list never need.
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

/** A task the caller may see: another user's task is indistinguishable from a missing one. */
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

function fingerprint(input: SubmitRequest): string {
  return sha256(canonicalJson(input));
}

/** JSON with sorted keys, so two bodies that differ only in key order are the same request. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

function header(headers: Record<string, string | undefined> | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return v;
  return undefined;
}

/** A malformed %-escape (e.g. /tasks/%E0%A4%A) is the caller's error, not a 500. */
function decodePathSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new ValidationError("task_id", `task id '${segment.slice(0, 80)}' is not validly %-encoded; expected letters, digits, '-' or '_'`);
  }
}

function methodNotAllowed(method: string, path: string, allowed: string[]): HttpError {
  return new HttpError(405, `${method} is not allowed on ${path}; allowed: ${allowed.join(", ")}`);
}

function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): ApiResponse {
  return { statusCode, headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) };
}

function errorResponse(err: unknown): ApiResponse {
  if (err instanceof ValidationError) return json(400, { error: err.message, field: err.field });
  // The store's InvalidPageTokenError (matched by name: the store module stays out of this one's imports).
  if ((err as Error)?.name === "InvalidPageTokenError") return json(400, { error: (err as Error).message, field: "next_token" });
  if (err instanceof HttpError) {
    return json(err.statusCode, { error: err.message, ...(err.field ? { field: err.field } : {}), ...err.extra });
  }
  // Unexpected: log the detail for the operator, keep internals out of the response.
  console.error("task API internal error:", err);
  return json(500, { error: `internal error: ${(err as Error)?.name ?? "Error"}; see the API's logs` });
}
