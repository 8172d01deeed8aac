/**
 * What every payload store shares: the size limit, encoding, a light shape check, and task-id safety (the id
 * becomes part of an S3 key or a file path, so it must not be able to climb out of its folder).
 */
import { PayloadTooLargeError } from "../errors";
import type { AgentPayload } from "../ports";

/**
 * 2 MiB: a 1 MiB prompt must fit with room for its JSON escaping and the context. An agent on any backend
 * reads it from a file or S3, so the limit is ours, not an AWS API's.
 */
export const PAYLOAD_MAX_BYTES = 2 * 1024 * 1024;

const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function checkTaskIdForPath(taskId: string): string {
  if (!SAFE_ID.test(taskId) || taskId.includes("..")) {
    throw new RangeError(
      `task id '${taskId}' cannot name a payload: use 1–128 letters, digits, '.', '_' or '-', starting with a letter or digit`,
    );
  }
  return taskId;
}

/** The payload as stored: UTF-8 JSON. Throws PayloadTooLargeError before anything is written. */
export function encodePayload(payload: AgentPayload, maxBytes: number = PAYLOAD_MAX_BYTES): Buffer {
  const body = Buffer.from(JSON.stringify(payload), "utf8");
  if (body.length > maxBytes) throw new PayloadTooLargeError(body.length, maxBytes);
  return body;
}

export function decodePayload(body: string, where: string): AgentPayload {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (err) {
    throw new Error(`payload at ${where} is not valid JSON: ${(err as Error).message}`);
  }
  const p = parsed as Partial<AgentPayload> | null;
  if (!p || typeof p !== "object" || Array.isArray(p)) throw new Error(`payload at ${where} is not a JSON object`);
  for (const key of ["task_id", "repo_url", "prompt"] as const) {
    if (typeof p[key] !== "string") throw new Error(`payload at ${where} has no string '${key}'`);
  }
  if (p.context !== undefined && (typeof p.context !== "object" || p.context === null || Array.isArray(p.context))) {
    throw new Error(`payload at ${where} has a 'context' that is not an object`);
  }
  return p as AgentPayload;
}

export interface S3Location {
  bucket: string;
  key: string;
}

export function parseS3Uri(uri: string): S3Location {
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (!m) throw new RangeError(`'${uri}' is not an S3 URI; expected s3://bucket/key`);
  return { bucket: m[1], key: m[2] };
}
