/**
 * POST /tasks: validate, resolve the backend, write the payload by reference, create the record (idempotent on
 * the caller's Idempotency-Key), then start its orchestration.
 */
import { createHash, randomUUID } from "node:crypto";
import { BackendResolutionError, resolveBackend } from "../compute/resolve";
import { PayloadTooLargeError, TaskExistsError } from "../errors";
import type { Dispatcher } from "../orchestrator/dispatch";
import { agentPayload } from "../payload/agent-payload";
import type { Runtime } from "../runtime";
import type { TaskRecord } from "../tasks/record";
import { header, HttpError, json, type ApiRequest, type ApiResponse, type RequestLog } from "./http";
import { parseJsonBody, validateIdempotencyKey, validateSubmitRequest, ValidationError, type SubmitRequest } from "./validation";
import { toTaskView, type SubmittedRecord } from "./views";

/**
 * The record keeps a bounded preview of the prompt: a DynamoDB item is at most 400 KB and prompts may be
 * 1 MiB. The full prompt travels in the payload.
 */
export const PROMPT_PREVIEW_CHARS = 4096;

export async function submitTask(runtime: Runtime, dispatcher: Dispatcher, req: ApiRequest, log: RequestLog): Promise<ApiResponse> {
  const input = validateSubmitRequest(parseJsonBody(req.body));
  const key = validateIdempotencyKey(header(req.headers, "idempotency-key"));
  const requestHash = fingerprint(input);
  // Same user + same key → the same task id, so the store's attribute_not_exists(task_id) decides races.
  const taskId = key ? sha256(`${req.userId}\n${key}`).slice(0, 32) : randomUUID().replace(/-/g, "");
  log.forTask(taskId);

  if (key) {
    const existing = (await runtime.tasks.get(taskId)) as SubmittedRecord | undefined;
    if (existing) return replay(dispatcher, existing, requestHash, key);
  }

  // No user may crowd the others out: past their own queue cap a submit is refused before anything is written.
  // The count reads this user's queue alone; concurrent submits may pass it by a few (the index is eventually consistent).
  const cap = runtime.config.limits.maxQueuedPerUser;
  if ((await runtime.tasks.countWaiting(req.userId, cap)) >= cap) {
    throw new HttpError(
      429,
      `you have ${cap} tasks waiting to start, the stack's limit (maxQueuedPerUser = ${cap}); wait for some to start or cancel some`,
      undefined,
      { limit: "maxQueuedPerUser", max: cap },
    );
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
  const payload = agentPayload(
    {
      task_id: taskId,
      repo_url: input.repo_url,
      prompt: input.prompt,
      branch: input.branch,
      issue_number: input.issue_number,
      model,
      max_turns: maxTurns,
      max_budget_usd: maxBudget,
    },
    input.context,
  );
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
  const { context: _context, ...work } = payload;
  const record: SubmittedRecord = {
    ...work,
    user_id: req.userId,
    status: "SUBMITTED",
    prompt: input.prompt.length > PROMPT_PREVIEW_CHARS ? `${input.prompt.slice(0, PROMPT_PREVIEW_CHARS)}…` : input.prompt,
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

async function replay(dispatcher: Dispatcher, existing: SubmittedRecord, requestHash: string, key: string): Promise<ApiResponse> {
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
