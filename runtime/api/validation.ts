/**
 * Input checks for the task API. Pure: no I/O, no clock. Each check throws ValidationError naming the one
 * field that is wrong and what would be right, so the handler can answer 400 before anything is written.
 */
import { BACKEND_TYPES, isBackendType, type BackendType } from "../compute/handle";
import { LIST_LIMIT, MAX_BUDGET_USD_BOUNDS, MAX_TURNS_BOUNDS } from "../limits";
import type { AgentPayload } from "../ports";
import { TASK_STATUSES, isTaskStatus, type TaskStatus } from "../tasks/status";

export class ValidationError extends Error {
  constructor(
    /** The request field at fault (`body` for the body as a whole, `Idempotency-Key` for the header). */
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = "ValidationError";
  }
}

/** The prompt limit of the API; the payload as a whole (prompt + context) is bounded by the payload store. */
export const PROMPT_MAX_BYTES = 1024 * 1024;
export const IDEMPOTENCY_KEY_MAX_LENGTH = 255;

/** A submit body: what the agent's payload will carry, plus where to run it. */
export interface SubmitRequest extends Omit<AgentPayload, "task_id"> {
  backend?: BackendType;
  fleet?: string;
}

const SUBMIT_FIELDS = [
  "repo_url",
  "prompt",
  "backend",
  "fleet",
  "branch",
  "issue_number",
  "model",
  "max_turns",
  "max_budget_usd",
  "context",
] as const;

/** Parse a JSON request body; an empty body is `{}` only when `allowEmpty`. */
export function parseJsonBody(body: string | undefined, allowEmpty = false): Record<string, unknown> {
  if (body === undefined || body.trim() === "") {
    if (allowEmpty) return {};
    throw new ValidationError("body", "request body is empty; expected a JSON object");
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (err) {
    throw new ValidationError("body", `request body is not valid JSON (${(err as Error).message})`);
  }
  if (!isPlainObject(parsed)) throw new ValidationError("body", "request body must be a JSON object");
  return parsed;
}

export function validateSubmitRequest(input: unknown): SubmitRequest {
  if (!isPlainObject(input)) throw new ValidationError("body", "request body must be a JSON object");
  for (const key of Object.keys(input)) {
    if (!(SUBMIT_FIELDS as readonly string[]).includes(key)) {
      throw new ValidationError(key, `unknown field '${key}'; allowed fields: ${SUBMIT_FIELDS.join(", ")}`);
    }
  }
  const out: SubmitRequest = {
    repo_url: validateRepoUrl(input.repo_url),
    prompt: validatePrompt(input.prompt),
  };
  if (input.backend !== undefined) {
    if (!isBackendType(input.backend)) {
      throw new ValidationError("backend", `backend must be one of ${BACKEND_TYPES.join(", ")}; got ${show(input.backend)}`);
    }
    out.backend = input.backend;
  }
  if (input.fleet !== undefined) {
    if (typeof input.fleet !== "string" || !/^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/.test(input.fleet)) {
      throw new ValidationError("fleet", `fleet must be a fleet name (letters, digits, '-', '_'; at most 63); got ${show(input.fleet)}`);
    }
    out.fleet = input.fleet;
  }
  if (input.branch !== undefined) out.branch = validateBranch(input.branch);
  if (input.issue_number !== undefined) {
    const n = input.issue_number;
    if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > 2 ** 31 - 1) {
      throw new ValidationError("issue_number", `issue_number must be a positive integer; got ${show(n)}`);
    }
    out.issue_number = n;
  }
  if (input.model !== undefined) {
    if (typeof input.model !== "string" || !/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$/.test(input.model)) {
      throw new ValidationError("model", `model must be a model id (letters, digits, '.', '_', ':', '/', '-'; at most 200); got ${show(input.model)}`);
    }
    out.model = input.model;
  }
  if (input.max_turns !== undefined) {
    const n = input.max_turns;
    if (typeof n !== "number" || !Number.isInteger(n) || n < MAX_TURNS_BOUNDS.min || n > MAX_TURNS_BOUNDS.max) {
      throw new ValidationError("max_turns", `max_turns must be an integer from ${MAX_TURNS_BOUNDS.min} to ${MAX_TURNS_BOUNDS.max}; got ${show(n)}`);
    }
    out.max_turns = n;
  }
  if (input.max_budget_usd !== undefined) {
    const n = input.max_budget_usd;
    if (typeof n !== "number" || !Number.isFinite(n) || n < MAX_BUDGET_USD_BOUNDS.min || n > MAX_BUDGET_USD_BOUNDS.max) {
      throw new ValidationError(
        "max_budget_usd",
        `max_budget_usd must be a number from ${MAX_BUDGET_USD_BOUNDS.min} to ${MAX_BUDGET_USD_BOUNDS.max}; got ${show(n)}`,
      );
    }
    out.max_budget_usd = n;
  }
  if (input.context !== undefined) {
    if (!isPlainObject(input.context)) throw new ValidationError("context", "context must be a JSON object");
    out.context = input.context;
  }
  return out;
}

/** https only, a host, and an owner/repo path (an optional `.git` suffix); no credentials, query or fragment. */
export function validateRepoUrl(value: unknown): string {
  const field = "repo_url";
  if (typeof value !== "string" || value.trim() === "") {
    throw new ValidationError(field, "repo_url is required: an https URL such as https://github.com/owner/repo");
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ValidationError(field, `repo_url ${show(value)} is not a URL; expected https://host/owner/repo`);
  }
  if (url.protocol !== "https:") {
    throw new ValidationError(field, `repo_url must use https, not ${url.protocol.replace(/:$/, "")}; expected https://host/owner/repo`);
  }
  if (url.username || url.password) {
    throw new ValidationError(field, "repo_url must not carry credentials; the agent gets repository access from its own role");
  }
  if (!url.hostname || !/^[A-Za-z0-9.-]+$/.test(url.hostname) || !url.hostname.includes(".")) {
    throw new ValidationError(field, `repo_url host ${show(url.hostname)} is not a DNS name; expected https://host/owner/repo`);
  }
  if (url.search || url.hash) {
    throw new ValidationError(field, "repo_url must not have a query or fragment; expected https://host/owner/repo");
  }
  const segments = url.pathname.replace(/\/+$/, "").split("/").slice(1);
  const segment = /^[A-Za-z0-9_.-]+$/;
  if (segments.length !== 2 || !segments.every((s) => segment.test(s) && s !== "." && s !== "..")) {
    throw new ValidationError(field, `repo_url path ${show(url.pathname)} must be /owner/repo; expected https://host/owner/repo`);
  }
  // The URL parser forgives what the stored text keeps: it drops tabs, newlines and surrounding spaces, decodes
  // %xx in the host and reads a backslash as '/'. The value travels as is (record, payload, SSM parameters), so it
  // must be exactly what was checked: plain URL characters only.
  if (!/^[A-Za-z0-9._:\/-]+$/.test(value)) {
    throw new ValidationError(field, `repo_url ${show(value)} has characters a plain https://host/owner/repo URL does not (whitespace, control characters, %, \\ or #)`);
  }
  return value;
}

export function validatePrompt(value: unknown): string {
  if (typeof value !== "string" || value.trim() === "") {
    throw new ValidationError("prompt", "prompt is required and must be non-empty text");
  }
  const bytes = Buffer.byteLength(value, "utf8");
  if (bytes > PROMPT_MAX_BYTES) {
    throw new ValidationError("prompt", `prompt is ${bytes} bytes; the limit is ${PROMPT_MAX_BYTES} bytes (1 MiB)`);
  }
  return value;
}

/** A git branch name that `git check-ref-format --branch` would accept, minus exotic corners. */
export function validateBranch(value: unknown): string {
  const bad = (why: string) => new ValidationError("branch", `branch ${show(value)} is not a valid git branch name: ${why}`);
  if (typeof value !== "string" || value === "") throw bad("expected non-empty text");
  if (value.length > 255) throw bad("longer than 255 characters");
  // Control characters, space and the characters git reserves for revision syntax.
  if (/[\x00-\x20\x7f~^:?*[\\]/.test(value)) throw bad("contains a space, control character or one of ~ ^ : ? * [ \\");
  if (value.includes("..") || value.includes("@{") || value.includes("//")) throw bad("contains '..', '@{' or '//'");
  if (value.startsWith("-") || value.startsWith("/") || value.endsWith("/") || value.endsWith(".")) {
    throw bad("starts with '-' or '/', or ends with '/' or '.'");
  }
  if (value.endsWith(".lock") || value.split("/").some((part) => part.startsWith("."))) {
    throw bad("ends with '.lock' or has a component starting with '.'");
  }
  if (value === "@") throw bad("'@' alone is reserved");
  return value;
}

export function validateIdempotencyKey(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (value.length < 1 || value.length > IDEMPOTENCY_KEY_MAX_LENGTH || !/^[\x21-\x7e]+$/.test(value)) {
    throw new ValidationError(
      "Idempotency-Key",
      `Idempotency-Key must be 1–${IDEMPOTENCY_KEY_MAX_LENGTH} printable ASCII characters without spaces`,
    );
  }
  return value;
}

/** Task ids are generated by the API (see handlers.ts); anything else cannot name a task. */
export function validateTaskId(value: string): string {
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(value)) {
    throw new ValidationError("task_id", `task id ${show(value)} is malformed; expected letters, digits, '-' or '_'`);
  }
  return value;
}

export interface ListQuery {
  status?: TaskStatus;
  limit: number;
  nextToken?: string;
}

export function validateListQuery(query: Record<string, string | undefined>): ListQuery {
  for (const key of Object.keys(query)) {
    if (!["status", "limit", "next_token"].includes(key)) {
      throw new ValidationError(key, `unknown query parameter '${key}'; allowed: status, limit, next_token`);
    }
  }
  const out: ListQuery = { limit: validateLimit(query.limit) };
  if (query.status !== undefined) {
    if (!isTaskStatus(query.status)) {
      throw new ValidationError("status", `status must be one of ${TASK_STATUSES.join(", ")}; got ${show(query.status)}`);
    }
    out.status = query.status;
  }
  if (query.next_token !== undefined) out.nextToken = validateNextToken(query.next_token);
  return out;
}

export function validatePageQuery(query: Record<string, string | undefined>): { limit: number; nextToken?: string } {
  for (const key of Object.keys(query)) {
    if (!["limit", "next_token"].includes(key)) {
      throw new ValidationError(key, `unknown query parameter '${key}'; allowed: limit, next_token`);
    }
  }
  return {
    limit: validateLimit(query.limit),
    ...(query.next_token !== undefined ? { nextToken: validateNextToken(query.next_token) } : {}),
  };
}

function validateLimit(raw: string | undefined): number {
  if (raw === undefined) return LIST_LIMIT.default;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < 1 || n > LIST_LIMIT.max) {
    throw new ValidationError("limit", `limit must be an integer from 1 to ${LIST_LIMIT.max}; got ${show(raw)}`);
  }
  return n;
}

function validateNextToken(raw: string): string {
  if (raw === "" || raw.length > 4096) throw new ValidationError("next_token", "next_token must be a token returned by a previous page");
  return raw;
}

/** Cancel takes an optional {reason}. */
export function validateCancelRequest(input: Record<string, unknown>): { reason?: string } {
  for (const key of Object.keys(input)) {
    if (key !== "reason") throw new ValidationError(key, `unknown field '${key}'; allowed fields: reason`);
  }
  if (input.reason === undefined) return {};
  if (typeof input.reason !== "string" || input.reason.length > 1000) {
    throw new ValidationError("reason", "reason must be text of at most 1000 characters");
  }
  return { reason: input.reason };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function show(value: unknown): string {
  const text = typeof value === "string" ? `'${value}'` : JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
