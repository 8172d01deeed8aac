/**
 * The CLI's view of a task API: a deployed stack (SigV4-signed HTTPS) or the local platform (plain HTTP on
 * 127.0.0.1, found through .agent-compute/local.json). Both answer the same routes (runtime/api/handlers.ts).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { regionFromUrl, signRequest, signingServiceFor, type SignOptions } from "./sigv4";

export const LOCAL_STATE_DIR = ".agent-compute";
export const LOCAL_STATE_FILE = "local.json";

/** An error answer of the API, or a transport failure: printed by the CLI as one line. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly statusCode?: number,
    readonly field?: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export interface ApiTarget {
  url: string;
  /** Present for a deployed stack. */
  signing?: Omit<SignOptions, "signingDate">;
}

export interface TargetOptions {
  apiUrl?: string;
  region?: string;
  /** Folder holding .agent-compute/ (the current directory by default). */
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

/** --api-url, else AGENT_COMPUTE_API_URL, else the local platform recorded by `agent-compute local`. */
export async function resolveTarget(options: TargetOptions): Promise<ApiTarget> {
  const env = options.env ?? process.env;
  const apiUrl = options.apiUrl ?? env.AGENT_COMPUTE_API_URL;
  if (apiUrl) {
    let url: URL;
    try {
      url = new URL(apiUrl);
    } catch {
      throw new ApiError(`--api-url '${apiUrl}' is not a URL; expected the stack's apiUrl output (https://…)`);
    }
    if (isLoopback(url.hostname)) return { url: apiUrl.replace(/\/+$/, "") };
    if (url.protocol !== "https:") throw new ApiError(`--api-url '${apiUrl}' must be https (only 127.0.0.1 may use http)`);
    const region = options.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? regionFromUrl(apiUrl);
    if (!region) throw new ApiError("no AWS region: pass --region or set AWS_REGION");
    const { fromNodeProviderChain } = await import("@aws-sdk/credential-providers");
    return {
      url: apiUrl.replace(/\/+$/, ""),
      signing: { credentials: fromNodeProviderChain(), region, service: signingServiceFor(apiUrl) },
    };
  }
  const file = join(options.cwd ?? process.cwd(), LOCAL_STATE_DIR, LOCAL_STATE_FILE);
  let state: { url?: string };
  try {
    state = JSON.parse(readFileSync(file, "utf8"));
  } catch {
    throw new ApiError(
      `no API to talk to: pass --api-url (or set AGENT_COMPUTE_API_URL) for a deployed stack, or start the local platform with 'agent-compute local' (${file} not found)`,
    );
  }
  if (!state.url) throw new ApiError(`${file} has no url; restart 'agent-compute local'`);
  return { url: state.url };
}

function isLoopback(host: string): boolean {
  return host === "127.0.0.1" || host === "localhost" || host === "[::1]";
}

export class ApiClient {
  constructor(private readonly target: ApiTarget) {}

  get url(): string {
    return this.target.url;
  }

  async request<T = Record<string, unknown>>(
    method: string,
    path: string,
    options: { query?: Record<string, string | number | undefined>; body?: unknown; headers?: Record<string, string> } = {},
  ): Promise<T> {
    const url = new URL(this.target.url + path);
    for (const [k, v] of Object.entries(options.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    let headers: Record<string, string> = {
      accept: "application/json",
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
      ...(options.headers ?? {}),
    };
    if (this.target.signing) headers = await signRequest({ method, url: url.toString(), headers, body }, this.target.signing);
    // fetch sets host itself; a signed host header is the same value.
    delete headers.host;
    let res: Response;
    try {
      res = await fetch(url, { method, headers, body });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new ApiError(`cannot reach the task API at ${this.target.url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
    }
    const text = await res.text();
    let parsed: Record<string, unknown> = {};
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      if (!res.ok) throw new ApiError(`HTTP ${res.status} from ${method} ${path}: ${text.slice(0, 200)}`, res.status);
      throw new ApiError(`the task API answered ${method} ${path} with non-JSON: ${text.slice(0, 200)}`, res.status);
    }
    if (!res.ok) {
      // API Gateway's own refusals (e.g. a bad signature) say {message}; ours say {error, field}.
      const message = (parsed.error ?? parsed.message ?? text) as string;
      const field = parsed.field as string | undefined;
      throw new ApiError(`HTTP ${res.status}: ${message}${field ? ` (field: ${field})` : ""}`, res.status, field);
    }
    return parsed as T;
  }
}
