import type { TaskStatus } from "./tasks/status";

/** The task's status did not allow the requested transition (or it changed under us). */
export class IllegalTransitionError extends Error {
  constructor(
    readonly taskId: string,
    readonly to: TaskStatus,
    readonly actual: TaskStatus | undefined,
  ) {
    super(
      actual === undefined
        ? `task ${taskId} does not exist (cannot move it to ${to})`
        : `task ${taskId} cannot move from ${actual} to ${to}`,
    );
    this.name = "IllegalTransitionError";
  }
}

export class TaskExistsError extends Error {
  constructor(readonly taskId: string) {
    super(`task ${taskId} already exists`);
    this.name = "TaskExistsError";
  }
}

export class PayloadTooLargeError extends Error {
  constructor(
    readonly bytes: number,
    readonly limitBytes: number,
  ) {
    super(`payload is ${bytes} bytes; the limit is ${limitBytes} bytes (${(limitBytes / 1048576).toFixed(0)} MiB)`);
    this.name = "PayloadTooLargeError";
  }
}

/** No ready instance in the named fleet: a normal outcome under load, not a fault. */
export class NoCapacityError extends Error {
  /** capacityError: EC2's current reason the fleet cannot grow (insufficient capacity, a quota, a full subnet). */
  constructor(
    readonly fleet: string,
    readonly capacityError?: string,
  ) {
    super(`no ready EC2 instance in fleet '${fleet}'${capacityError ? ` (EC2: ${capacityError})` : ""}`);
    this.name = "NoCapacityError";
  }
}

/**
 * Did the service refuse the request outright, so that it certainly did nothing? Throttling and other 4xx answers
 * (but a 408 timeout) are refusals; 5xx, timeouts and network errors leave it unknown whether the request landed.
 */
export function wasRefused(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  if (!e || typeof e !== "object") return false;
  if (["ThrottlingException", "TooManyRequestsException"].includes(e.name ?? "")) return true;
  const status = e.$metadata?.httpStatusCode;
  return status !== undefined && status >= 400 && status < 500 && status !== 408;
}

/** Errors worth one retry of the start step: throttling, 5xx, network. The SDK already retried inside. */
export function isTransientError(err: unknown): boolean {
  const e = err as { name?: string; $retryable?: unknown; $metadata?: { httpStatusCode?: number }; code?: string };
  if (!e || typeof e !== "object") return false;
  if (e.$retryable) return true;
  const status = e.$metadata?.httpStatusCode;
  if (status !== undefined && status >= 500) return true;
  return [
    "ThrottlingException",
    "TooManyRequestsException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalServerError",
    "InternalServerException",
    "RequestTimeout",
    "TimeoutError",
    "ECONNRESET",
    "ETIMEDOUT",
    "ECONNREFUSED",
  ].includes(e.name ?? e.code ?? "");
}
