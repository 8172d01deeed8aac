/**
 * Checks of what an agent sends over the channel. Pure. The agent is untrusted: every field is bounded, unknown
 * fields are refused, and each refusal names the field so an honest agent's author can fix it.
 */
import { ValidationError } from "../api/validation";

/** Any channel request body larger than this is refused (413) before it is parsed. */
export const CHANNEL_BODY_MAX_BYTES = 64 * 1024;
export const EVENT_MESSAGE_MAX_CHARS = 2000;
export const EVENT_DATA_MAX_BYTES = 8 * 1024;
export const ERROR_MESSAGE_MAX_CHARS = 2000;
export const SUMMARY_MAX_CHARS = 4000;
const PR_URL_MAX_CHARS = 2048;

export const AGENT_EVENT_TYPES = ["info", "progress", "error"] as const;
export type AgentEventType = (typeof AGENT_EVENT_TYPES)[number];

export interface AgentEventReport {
  type: AgentEventType;
  message: string;
  data?: Record<string, unknown>;
}

export interface AgentResultReport {
  status: "COMPLETED" | "FAILED";
  exit_code: number;
  error_message?: string;
  pr_url?: string;
  cost_usd?: number;
  turns?: number;
  summary?: string;
}

function onlyFields(body: Record<string, unknown>, allowed: readonly string[]): void {
  for (const key of Object.keys(body)) {
    if (!allowed.includes(key)) throw new ValidationError(key, `unknown field '${key.slice(0, 64)}'; allowed: ${allowed.join(", ") || "none"}`);
  }
}

function boundedString(body: Record<string, unknown>, field: string, max: number, required: boolean): string | undefined {
  const v = body[field];
  if (v === undefined) {
    if (required) throw new ValidationError(field, `${field} is required: a string of at most ${max} characters`);
    return undefined;
  }
  if (typeof v !== "string") throw new ValidationError(field, `${field} must be a string of at most ${max} characters`);
  if (v.length > max) throw new ValidationError(field, `${field} is ${v.length} characters; the limit is ${max}`);
  return v;
}

/**
 * The body as a JSON object. Unlike the user API's parser, a refusal never quotes the body: JSON.parse's message
 * does, and an agent's body may hold what it should not.
 */
function parseReport(raw: string | undefined, allowEmpty = false): Record<string, unknown> {
  if (raw === undefined || raw.trim() === "") {
    if (allowEmpty) return {};
    throw new ValidationError("body", "request body is empty; expected a JSON object");
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ValidationError("body", "request body is not valid JSON");
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new ValidationError("body", "request body must be a JSON object");
  return parsed as Record<string, unknown>;
}

/** A body with no fields: RUNNING and heartbeat. */
export function validateEmptyReport(raw: string | undefined): void {
  onlyFields(parseReport(raw, true), []);
}

export function validateEventReport(raw: string | undefined): AgentEventReport {
  const body = parseReport(raw);
  onlyFields(body, ["type", "message", "data"]);
  if (!(AGENT_EVENT_TYPES as readonly unknown[]).includes(body.type)) {
    throw new ValidationError("type", `type must be one of ${AGENT_EVENT_TYPES.join(", ")}`);
  }
  const message = boundedString(body, "message", EVENT_MESSAGE_MAX_CHARS, true)!;
  let data: Record<string, unknown> | undefined;
  if (body.data !== undefined) {
    if (!body.data || typeof body.data !== "object" || Array.isArray(body.data)) {
      throw new ValidationError("data", "data must be a JSON object");
    }
    const bytes = Buffer.byteLength(JSON.stringify(body.data), "utf8");
    if (bytes > EVENT_DATA_MAX_BYTES) throw new ValidationError("data", `data is ${bytes} bytes as JSON; the limit is ${EVENT_DATA_MAX_BYTES}`);
    data = body.data as Record<string, unknown>;
  }
  return { type: body.type as AgentEventType, message, ...(data ? { data } : {}) };
}

export function validateResultReport(raw: string | undefined): AgentResultReport {
  const body = parseReport(raw);
  onlyFields(body, ["status", "exit_code", "error_message", "pr_url", "cost_usd", "turns", "summary"]);
  if (body.status !== "COMPLETED" && body.status !== "FAILED") {
    throw new ValidationError("status", "status must be COMPLETED or FAILED");
  }
  const exit = body.exit_code;
  if (!Number.isInteger(exit) || (exit as number) < 0 || (exit as number) > 255) {
    throw new ValidationError("exit_code", "exit_code must be an integer from 0 to 255 (the code the agent exits with)");
  }
  const errorMessage = boundedString(body, "error_message", ERROR_MESSAGE_MAX_CHARS, body.status === "FAILED");
  const prUrl = boundedString(body, "pr_url", PR_URL_MAX_CHARS, false);
  if (prUrl !== undefined && !isHttpsUrl(prUrl)) throw new ValidationError("pr_url", "pr_url must be an https:// URL");
  const cost = body.cost_usd;
  if (cost !== undefined && !(typeof cost === "number" && Number.isFinite(cost) && cost >= 0)) {
    throw new ValidationError("cost_usd", "cost_usd must be a number >= 0");
  }
  const turns = body.turns;
  if (turns !== undefined && !(Number.isInteger(turns) && (turns as number) >= 0)) {
    throw new ValidationError("turns", "turns must be an integer >= 0");
  }
  const summary = boundedString(body, "summary", SUMMARY_MAX_CHARS, false);
  return {
    status: body.status,
    exit_code: exit as number,
    ...(errorMessage !== undefined ? { error_message: errorMessage } : {}),
    ...(prUrl !== undefined ? { pr_url: prUrl } : {}),
    ...(cost !== undefined ? { cost_usd: cost as number } : {}),
    ...(turns !== undefined ? { turns: turns as number } : {}),
    ...(summary !== undefined ? { summary } : {}),
  };
}

function isHttpsUrl(value: string): boolean {
  try {
    const u = new URL(value);
    return u.protocol === "https:" && !!u.hostname && !u.username && !u.password && !/\s/.test(value);
  } catch {
    return false;
  }
}
