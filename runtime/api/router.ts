/**
 * The task API, framework-free: one function from a plain request to a plain response. The Lambda adapter
 * (lambda.ts) and the local platform's HTTP server both route here, so the deployed and the local API are
 * the same code.
 *
 *   POST /tasks                  submit (Idempotency-Key header honoured)      submit.ts
 *   GET  /tasks                  list the caller's tasks (?status=&limit=&next_token=)   views.ts
 *   GET  /tasks/{id}             one task                                      views.ts
 *   POST /tasks/{id}/cancel      cancel it (body: optional {reason})           cancel.ts
 *   GET  /tasks/{id}/events      its events, oldest first (?limit=&next_token=)   views.ts
 *   *    /agent/v1/…             the agent channel: token auth, no user         ../channel/server.ts
 */
import type { Logger } from "@aws-lambda-powertools/logger";
import { createLogger, LOG_SERVICES } from "../logger";
import { isChannelPath } from "../channel/paths";
import type { Dispatcher } from "../orchestrator/dispatch";
import type { Runtime } from "../runtime";
import { cancelRoute } from "./cancel";
import { errorResponse, HttpError, methodNotAllowed, RequestLog, type ApiRequest, type ApiResponse } from "./http";
import { submitTask } from "./submit";
import { ValidationError, validateTaskId } from "./validation";
import { getTask, listEvents, listTasks } from "./views";

export type { ApiRequest, ApiResponse } from "./http";

/** Starts the orchestration of a submitted task (LambdaDispatcher in the cloud, the local loop locally). */
export type TaskDispatcher = Dispatcher;

let defaultLogger: Logger | undefined;

export async function handleApiRequest(
  runtime: Runtime,
  dispatcher: TaskDispatcher,
  request: ApiRequest,
  logger: Logger = (defaultLogger ??= createLogger(LOG_SERVICES.api)),
): Promise<ApiResponse> {
  const log = new RequestLog(logger);
  try {
    return await route(runtime, dispatcher, request, log);
  } catch (err) {
    return errorResponse(err, log);
  }
}

async function route(runtime: Runtime, dispatcher: TaskDispatcher, req: ApiRequest, log: RequestLog): Promise<ApiResponse> {
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
    if (method === "POST") return submitTask(runtime, dispatcher, req, log);
    if (method === "GET") return listTasks(runtime, req.userId, query);
    throw methodNotAllowed(method, req.path, ["GET", "POST"]);
  }
  const taskId = validateTaskId(decodePathSegment(parts[1]));
  log.forTask(taskId);
  if (parts.length === 2) {
    if (method !== "GET") throw methodNotAllowed(method, req.path, ["GET"]);
    return getTask(runtime, taskId, req.userId);
  }
  if (parts[2] === "cancel") {
    if (method !== "POST") throw methodNotAllowed(method, req.path, ["POST"]);
    return cancelRoute(runtime, taskId, req);
  }
  if (parts[2] === "events") {
    if (method !== "GET") throw methodNotAllowed(method, req.path, ["GET"]);
    return listEvents(runtime, taskId, req.userId, query);
  }
  throw new HttpError(404, `no such route: ${method} ${req.path}`);
}

/** A malformed %-escape (e.g. /tasks/%E0%A4%A) is the caller's error, not a 500. */
function decodePathSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new ValidationError("task_id", `task id '${segment.slice(0, 80)}' is not validly %-encoded; expected letters, digits, '-' or '_'`);
  }
}
