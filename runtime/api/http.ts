/** The task API's HTTP vocabulary: request and response shapes, errors that carry a status, JSON answers. */
import type { Logger } from "@aws-lambda-powertools/logger";
import { taskLogger } from "../logger";
import { InvalidPageTokenError } from "../tasks/paging";
import { ValidationError } from "./validation";

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

/** The logger of one request: once the request names its task (or submit gives it its id), every line carries it. */
export class RequestLog {
  current: Logger;

  constructor(private readonly parent: Logger) {
    this.current = parent;
  }

  forTask(taskId: string): void {
    this.current = taskLogger(this.parent, taskId);
  }
}

/** An answer other than 2xx, with the field it concerns and any extra body members. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly field?: string,
    readonly extra?: Record<string, unknown>,
  ) {
    super(message);
  }
}

export function header(headers: Record<string, string | undefined> | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return v;
  return undefined;
}

export function methodNotAllowed(method: string, path: string, allowed: string[]): HttpError {
  return new HttpError(405, `${method} is not allowed on ${path}; allowed: ${allowed.join(", ")}`);
}

export function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): ApiResponse {
  return { statusCode, headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) };
}

/** The response for any error a handler threw: 4xx with the message for the caller's mistakes, 500 otherwise. */
export function errorResponse(err: unknown, log: RequestLog): ApiResponse {
  if (err instanceof ValidationError) return json(400, { error: err.message, field: err.field });
  if (err instanceof InvalidPageTokenError) return json(400, { error: err.message, field: "next_token" });
  if (err instanceof HttpError) {
    return json(err.statusCode, { error: err.message, ...(err.field ? { field: err.field } : {}), ...err.extra });
  }
  // Unexpected: log the detail for the operator, keep internals out of the response.
  log.current.error("task API internal error", { error: err });
  return json(500, { error: `internal error: ${(err as Error)?.name ?? "Error"}; see the API's logs` });
}
