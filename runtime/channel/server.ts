/**
 * The agent channel, server side: the only way an agent reaches the platform. Every route is authenticated by
 * the task's capability token (Authorization: Bearer), checked against the SHA-256 on the task record, so an
 * agent can touch its own task and nothing else, and only while that task is alive.
 *
 *   POST /agent/v1/tasks/{id}/running       STARTING → RUNNING
 *   POST /agent/v1/tasks/{id}/heartbeat     agent_heartbeat_at = now
 *   POST /agent/v1/tasks/{id}/events        one bounded event (rate-limited per task)
 *   POST /agent/v1/tasks/{id}/result        the terminal result, once
 *   GET  /agent/v1/tasks/{id}/credentials   repository credentials, from the RepoCredentialsProvider
 *
 * The deployed API serves these without IAM auth (the token is the auth) and the local platform on its loopback
 * server: both route here. Nothing an agent sends, and no token, is ever written to a log.
 */
import type { ApiResponse } from "../api/http";
import { ValidationError, validateTaskId } from "../api/validation";
import { IllegalTransitionError } from "../errors";
import { wakeOrchestrator } from "../orchestrator/wake";
import type { Runtime } from "../runtime";
import type { TaskRecord } from "../tasks/record";
import { isTerminal, type TaskStatus } from "../tasks/status";
import { NO_REPO_CREDENTIALS, type RepoCredentialsProvider } from "./credentials";
import { spendReportToken } from "./rate-limit";
import { AGENT_TOKEN_PATTERN, bearerToken, tokenMatches } from "./token";
import {
  CHANNEL_BODY_MAX_BYTES,
  validateEmptyReport,
  validateEventReport,
  validateResultReport,
  type AgentResultReport,
} from "./validation";

/** A heartbeat within this long of the last one is answered without a write: a flood costs reads, not writes. */
export const MIN_HEARTBEAT_WRITE_MS = 1000;

export interface AgentRequest {
  method: string;
  path: string;
  headers?: Record<string, string | undefined>;
  body?: string;
}

export interface ChannelOptions {
  /** Overrides the runtime's provider (tests). */
  credentials?: RepoCredentialsProvider;
}

const ROUTES = { running: "POST", heartbeat: "POST", events: "POST", result: "POST", credentials: "GET" } as const;
type Route = keyof typeof ROUTES;

class ChannelError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly body: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export async function handleAgentRequest(rt: Runtime, req: AgentRequest, options: ChannelOptions = {}): Promise<ApiResponse> {
  try {
    return await route(rt, req, options);
  } catch (err) {
    if (err instanceof ChannelError) return json(err.statusCode, { ...(err.statusCode === 409 ? {} : { error: err.message }), ...err.body }, err.headers);
    if (err instanceof ValidationError) return json(400, { error: err.message, field: err.field });
    // Unexpected: the operator gets the error's name and message (never the request), the agent a bare 500.
    console.error(`agent channel internal error: ${(err as Error)?.name}: ${(err as Error)?.message}`);
    return json(500, { error: "internal error; the platform's operator can see it in the API's logs" });
  }
}

async function route(rt: Runtime, req: AgentRequest, options: ChannelOptions): Promise<ApiResponse> {
  const m = /^\/agent\/v1\/tasks\/([^/]+)\/([a-z]+)\/?$/.exec(req.path);
  const action = m?.[2] as Route | undefined;
  if (!m || !action || !(action in ROUTES)) throw new ChannelError(404, `no such agent route: ${req.method} ${req.path.slice(0, 200)}`);
  if (req.method.toUpperCase() !== ROUTES[action]) {
    throw new ChannelError(405, `${req.method} is not allowed on ${action}; use ${ROUTES[action]}`, {}, { allow: ROUTES[action] });
  }
  const bytes = Buffer.byteLength(req.body ?? "", "utf8");
  if (bytes > CHANNEL_BODY_MAX_BYTES) throw new ChannelError(413, `request body is ${bytes} bytes; the limit is ${CHANNEL_BODY_MAX_BYTES}`);

  const task = await authenticate(rt, m[1], header(req.headers, "authorization"));
  if (isTerminal(task.status)) {
    // A token dies with its task. The one exception: an agent repeating the result it already reported (its
    // first answer was lost) learns the outcome instead of an error.
    if (action === "result" && sameResult(task, safeResult(req.body))) throw new ChannelError(409, "", { status: task.status });
    throw new ChannelError(401, `task ${task.task_id} has ended (${task.status}); its agent token is no longer valid`);
  }

  switch (action) {
    case "running":
      validateEmptyReport(req.body);
      return running(rt, task);
    case "heartbeat":
      validateEmptyReport(req.body);
      return heartbeat(rt, task);
    case "events":
      return events(rt, task, req.body);
    case "result":
      return result(rt, task, validateResultReport(req.body));
    case "credentials":
      return credentials(rt, task, options.credentials ?? rt.repoCredentials ?? NO_REPO_CREDENTIALS);
    default: {
      const unhandled: never = action;
      throw new ChannelError(404, `no such agent route: ${String(unhandled)}`);
    }
  }
}

/** The task this token opens, or 401. Every refusal reads the same, whether the task exists or not. */
async function authenticate(rt: Runtime, rawId: string, authorization: string | undefined): Promise<TaskRecord> {
  const token = bearerToken(authorization);
  if (!token || !AGENT_TOKEN_PATTERN.test(token)) {
    throw new ChannelError(401, "missing or malformed agent token: send 'Authorization: Bearer <the token from the payload's channel.token>'");
  }
  let taskId: string;
  try {
    taskId = validateTaskId(decodeURIComponent(rawId));
  } catch {
    throw new ChannelError(401, "the agent token is not valid for this task");
  }
  const task = await rt.tasks.get(taskId);
  if (!task || !tokenMatches(token, task.agent_token_sha256)) throw new ChannelError(401, `the agent token is not valid for task ${taskId}`);
  return task;
}

async function running(rt: Runtime, task: TaskRecord): Promise<ApiResponse> {
  if (task.status === "RUNNING") return heartbeat(rt, task);
  const now = rt.now().toISOString();
  try {
    await rt.tasks.transition(task.task_id, "RUNNING", { agent_heartbeat_at: now }, ["STARTING"]);
  } catch (err) {
    const actual = refusedStatus(err);
    if (actual === "RUNNING") return json(200, { status: "RUNNING" });
    throw new ChannelError(409, "", { status: actual });
  }
  await rt.events.append(task.task_id, "status", "the agent is running", { status: "RUNNING" });
  return json(200, { status: "RUNNING" });
}

async function heartbeat(rt: Runtime, task: TaskRecord): Promise<ApiResponse> {
  const now = rt.now();
  const last = task.agent_heartbeat_at ? Date.parse(task.agent_heartbeat_at) : NaN;
  if (now.getTime() - last < MIN_HEARTBEAT_WRITE_MS) return json(200, { status: task.status });
  try {
    await rt.tasks.heartbeat(task.task_id, now);
  } catch (err) {
    throw new ChannelError(409, "", { status: refusedStatus(err) });
  }
  return json(200, { status: task.status });
}

async function events(rt: Runtime, task: TaskRecord, body: string | undefined): Promise<ApiResponse> {
  const report = validateEventReport(body);
  const decision = await spendReportToken(rt, task);
  if (!decision.allowed) {
    throw new ChannelError(
      429,
      `task ${task.task_id} is over its event rate; retry after ${decision.retryAfterSeconds}s`,
      {},
      { "retry-after": String(decision.retryAfterSeconds) },
    );
  }
  await rt.events.append(task.task_id, report.type, report.message, { source: "agent", ...(report.data ? { data: report.data } : {}) });
  return json(202, {});
}

async function result(rt: Runtime, task: TaskRecord, report: AgentResultReport): Promise<ApiResponse> {
  const { status, ...fields } = report;
  try {
    await rt.tasks.transition(task.task_id, status, fields, ["STARTING", "RUNNING"]);
  } catch (err) {
    throw new ChannelError(409, "", { status: refusedStatus(err) });
  }
  // The orchestrator finalizes at once instead of at its next poll (a lost wake costs one poll, never throws).
  await wakeOrchestrator(rt, task.task_id);
  return json(200, { status });
}

async function credentials(rt: Runtime, task: TaskRecord, provider: RepoCredentialsProvider): Promise<ApiResponse> {
  const decision = await spendReportToken(rt, task);
  if (!decision.allowed) {
    throw new ChannelError(429, `task ${task.task_id} is over its request rate; retry after ${decision.retryAfterSeconds}s`, {}, {
      "retry-after": String(decision.retryAfterSeconds),
    });
  }
  const git = await provider.getGitCredentials(task);
  if (!git) throw new ChannelError(404, `no repository credentials are configured for ${task.repo_url}`);
  return json(200, { git }, { "cache-control": "no-store" });
}

/** The status that refused a conditional write (a cancel or timeout won the race). */
function refusedStatus(err: unknown): TaskStatus | undefined {
  if (err instanceof IllegalTransitionError) return err.actual;
  throw err;
}

function safeResult(body: string | undefined): AgentResultReport | undefined {
  try {
    return validateResultReport(body);
  } catch {
    return undefined;
  }
}

/** Is this the result the record already holds (an agent retrying a report whose answer it lost)? */
function sameResult(task: TaskRecord, report: AgentResultReport | undefined): boolean {
  if (!report) return false;
  return (
    report.status === task.status &&
    report.exit_code === task.exit_code &&
    (report.error_message ?? undefined) === (task.error_message ?? undefined) &&
    (report.pr_url ?? undefined) === (task.pr_url ?? undefined)
  );
}

function header(headers: Record<string, string | undefined> | undefined, name: string): string | undefined {
  for (const [k, v] of Object.entries(headers ?? {})) if (k.toLowerCase() === name) return v;
  return undefined;
}

function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): ApiResponse {
  return { statusCode, headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) };
}
