/**
 * The runner's input: TASK_ID and AGENT_PAYLOAD_URL from the environment (or an AgentCore invocation body), the
 * payload they point at, checked. Every problem is named at once; the runner reports none of them through the
 * channel before it has a channel (a payload it cannot read has no token in it).
 */
import { readFile } from "node:fs/promises";
import * as path from "node:path";

/** The platform keeps payloads at or below this size. */
export const MAX_PAYLOAD_BYTES = 2 * 1024 * 1024;

/** The payload as the runner reads it: the AgentPayload fields (runtime/ports.ts) + the channel. agent/ is the image's
 * whole build context, so it keeps its own copy of the shape instead of importing the runtime's. */
export interface RunnerPayload {
  task_id: string;
  repo_url: string;
  prompt: string;
  branch?: string;
  issue_number?: number;
  model?: string;
  max_turns?: number;
  max_budget_usd?: number;
  context?: Record<string, unknown>;
  channel: { url: string; token: string };
}

export class PayloadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PayloadError";
  }
}

export interface TaskInput {
  taskId: string;
  payloadUrl: string;
}

export function readTaskInput(env: NodeJS.ProcessEnv): TaskInput {
  const missing = ["TASK_ID", "AGENT_PAYLOAD_URL"].filter((k) => !env[k]);
  if (missing.length) throw new PayloadError(`missing environment variable(s): ${missing.join(", ")}`);
  return { taskId: env.TASK_ID!, payloadUrl: env.AGENT_PAYLOAD_URL! };
}

/** A presigned https URL, or an absolute file path (local backend; the EC2 fleet's mounted file). */
export async function fetchPayloadText(url: string, fetchImpl: typeof fetch = fetch): Promise<string> {
  if (path.isAbsolute(url)) {
    const text = await readFile(url, "utf8");
    if (Buffer.byteLength(text) > MAX_PAYLOAD_BYTES) throw new PayloadError(`payload file ${url} is over ${MAX_PAYLOAD_BYTES} bytes`);
    return text;
  }
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new PayloadError("AGENT_PAYLOAD_URL is neither an absolute path nor a URL");
  }
  if (u.protocol !== "https:") throw new PayloadError(`AGENT_PAYLOAD_URL must be https:// or an absolute path, got ${u.protocol}`);
  const res = await fetchImpl(url, { signal: AbortSignal.timeout(30_000) });
  // The URL is presigned: never echo it (its query is a credential).
  if (!res.ok) throw new PayloadError(`payload download from ${u.host} answered HTTP ${res.status}`);
  const text = await res.text();
  if (Buffer.byteLength(text) > MAX_PAYLOAD_BYTES) throw new PayloadError(`payload from ${u.host} is over ${MAX_PAYLOAD_BYTES} bytes`);
  return text;
}

const isPosInt = (v: unknown) => Number.isInteger(v) && (v as number) > 0;

/** The payload, checked against TASK_ID; every problem named. */
export function parsePayload(text: string, taskId: string): RunnerPayload {
  let raw: any;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new PayloadError(`payload is not JSON: ${(err as Error).message}`);
  }
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw new PayloadError("payload is not a JSON object");
  const problems: string[] = [];
  if (raw.task_id !== taskId) problems.push(`payload is for task ${JSON.stringify(raw.task_id)}, not TASK_ID ${taskId}`);
  if (typeof raw.repo_url !== "string" || !raw.repo_url) problems.push("repo_url is missing");
  if (typeof raw.prompt !== "string") problems.push("prompt is missing");
  if (raw.branch !== undefined && !(typeof raw.branch === "string" && isBranchName(raw.branch))) problems.push(`branch ${JSON.stringify(raw.branch)} is not a usable branch name`);
  if (raw.model !== undefined && typeof raw.model !== "string") problems.push("model must be a string");
  if (raw.max_turns !== undefined && !isPosInt(raw.max_turns)) problems.push("max_turns must be a positive integer");
  if (raw.max_budget_usd !== undefined && !(typeof raw.max_budget_usd === "number" && raw.max_budget_usd > 0)) problems.push("max_budget_usd must be a positive number");
  const ch = raw.channel;
  if (!ch || typeof ch.url !== "string" || !/^https?:\/\//.test(ch.url) || typeof ch.token !== "string" || !ch.token) {
    problems.push("channel {url, token} is missing or malformed");
  }
  if (problems.length) throw new PayloadError(problems.join("; "));
  return raw as RunnerPayload;
}

/** A conservative subset of git's ref-name rules: what a person would type, nothing git could misread. */
export function isBranchName(name: string): boolean {
  return (
    /^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$/.test(name) &&
    !name.includes("..") &&
    !name.includes("//") &&
    !name.endsWith("/") &&
    !name.endsWith(".lock") &&
    !name.endsWith(".")
  );
}
