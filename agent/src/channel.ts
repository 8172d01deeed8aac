/**
 * The agent channel, client side: the narrow routes through which an agent reports (docs/agent-contract.md).
 * Plain HTTPS + JSON with the task's bearer token; no AWS SDK. A 409 carries the task's actual status, which is how
 * the runner learns that its task was cancelled or timed out.
 */

export type ReportedStatus = "SUBMITTED" | "QUEUED" | "STARTING" | "RUNNING" | "COMPLETED" | "FAILED" | "CANCELLED" | "TIMED_OUT";

export const TERMINAL: readonly string[] = ["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"];

export interface GitCredentials {
  username: string;
  token: string;
  expires_at?: string;
}

export interface TaskResult {
  status: "COMPLETED" | "FAILED";
  exit_code: number;
  error_message?: string;
  pr_url?: string;
  cost_usd?: number;
  turns?: number;
  summary?: string;
}

export type EventType = "info" | "progress" | "error";

/** Limits of the channel's routes (the server refuses more). */
export const CHANNEL_LIMITS = {
  eventMessageChars: 2000,
  eventDataBytes: 8 * 1024,
  errorMessageChars: 2000,
  summaryChars: 4000,
} as const;

/** The server answered, but not with success. `status` is the task status a 409 names. */
export class ChannelError extends Error {
  constructor(
    readonly route: string,
    readonly httpStatus: number,
    readonly body: any,
    readonly retryAfterSeconds?: number,
  ) {
    super(`${route}: HTTP ${httpStatus}${body?.error ? ` (${body.error})` : body?.status ? ` (task is ${body.status})` : ""}`);
    this.name = "ChannelError";
  }
  /** The task's actual status when the server refused because of it (409). */
  get taskStatus(): string | undefined {
    return this.httpStatus === 409 && typeof this.body?.status === "string" ? this.body.status : undefined;
  }
  get taskEnded(): boolean {
    return this.taskStatus !== undefined && TERMINAL.includes(this.taskStatus);
  }
}

export interface ChannelOptions {
  url: string;
  token: string;
  taskId: string;
  fetch?: typeof fetch;
  /** Per-request timeout. Default 15 s. */
  timeoutMs?: number;
}

export class AgentChannel {
  private readonly base: string;
  private readonly fetchImpl: typeof fetch;
  private readonly timeoutMs: number;

  constructor(private readonly options: ChannelOptions) {
    this.base = `${options.url.replace(/\/+$/, "")}/agent/v1/tasks/${encodeURIComponent(options.taskId)}`;
    this.fetchImpl = options.fetch ?? fetch;
    this.timeoutMs = options.timeoutMs ?? 15_000;
  }

  running(): Promise<{ status: string }> {
    return this.call("POST", "running", {});
  }

  heartbeat(): Promise<{ status: string }> {
    return this.call("POST", "heartbeat", {});
  }

  event(type: EventType, message: string, data?: Record<string, unknown>): Promise<void> {
    return this.call("POST", "events", data === undefined ? { type, message } : { type, message, data }).then(() => undefined);
  }

  result(result: TaskResult): Promise<{ status: string }> {
    return this.call("POST", "result", result);
  }

  /** The repository credentials for this task, or undefined when none are configured (404). */
  async credentials(): Promise<GitCredentials | undefined> {
    try {
      const body = await this.call<{ git?: GitCredentials }>("GET", "credentials");
      if (!body.git || typeof body.git.token !== "string" || !body.git.token) throw new Error("credentials: the answer has no git.token");
      return { username: body.git.username || "x-access-token", token: body.git.token, ...(body.git.expires_at ? { expires_at: body.git.expires_at } : {}) };
    } catch (err) {
      if (err instanceof ChannelError && err.httpStatus === 404) return undefined;
      throw err;
    }
  }

  private async call<T = any>(method: "GET" | "POST", route: string, body?: unknown): Promise<T> {
    const res = await this.fetchImpl(`${this.base}/${route}`, {
      method,
      headers: {
        authorization: `Bearer ${this.options.token}`,
        accept: "application/json",
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    const text = await res.text();
    let parsed: any = {};
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      parsed = { error: text.slice(0, 200) };
    }
    if (res.ok) return parsed as T;
    const retryAfter = Number(res.headers.get("retry-after"));
    throw new ChannelError(`${method} ${route}`, res.status, parsed, Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined);
  }
}

/** Transient: worth one more try (network trouble, throttling, a server error). */
export function isTransient(err: unknown): boolean {
  if (err instanceof ChannelError) return err.httpStatus === 429 || err.httpStatus >= 500;
  return true;
}
