/**
 * The agent's side of the channel: plain `fetch`, no AWS SDK, so the reference agent shows that any language with
 * an HTTP client can honour the contract. One method per route; each returns the HTTP status and the JSON answer,
 * and the caller decides what a refusal means (docs/agent-contract.md §3).
 */
import { readFile } from "node:fs/promises";
import * as path from "node:path";
import { decodePayload, PAYLOAD_MAX_BYTES } from "../payload/limits";
import type { AgentChannelRef, AgentPayload } from "../ports";

export interface ChannelAnswer {
  status: number;
  body: Record<string, unknown>;
}

export type Fetch = typeof fetch;

/** Seconds one channel request may take before it counts as a transient failure. */
const REQUEST_TIMEOUT_MS = 20_000;

export class AgentChannelClient {
  private readonly base: string;

  constructor(
    channel: AgentChannelRef,
    taskId: string,
    private readonly fetchImpl: Fetch = fetch,
  ) {
    this.base = `${channel.url.replace(/\/+$/, "")}/agent/v1/tasks/${encodeURIComponent(taskId)}`;
    this.token = channel.token;
  }

  /** Kept out of enumerable fields so that logging the client never prints it. */
  private set token(value: string) {
    tokens.set(this, value);
  }

  running(): Promise<ChannelAnswer> {
    return this.send("POST", "running", {});
  }

  heartbeat(): Promise<ChannelAnswer> {
    return this.send("POST", "heartbeat", {});
  }

  event(type: "info" | "progress" | "error", message: string, data?: Record<string, unknown>): Promise<ChannelAnswer> {
    return this.send("POST", "events", { type, message, ...(data ? { data } : {}) });
  }

  result(report: Record<string, unknown>): Promise<ChannelAnswer> {
    return this.send("POST", "result", report);
  }

  credentials(): Promise<ChannelAnswer> {
    return this.send("GET", "credentials");
  }

  private async send(method: "GET" | "POST", route: string, body?: unknown): Promise<ChannelAnswer> {
    const res = await this.fetchImpl(`${this.base}/${route}`, {
      method,
      headers: {
        authorization: `Bearer ${tokens.get(this)}`,
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const text = await res.text();
    let parsed: Record<string, unknown> = {};
    try {
      const value = text ? JSON.parse(text) : {};
      if (value && typeof value === "object" && !Array.isArray(value)) parsed = value;
    } catch {
      parsed = { error: `non-JSON answer (${text.length} bytes)` };
    }
    return { status: res.status, body: parsed };
  }
}
const tokens = new WeakMap<AgentChannelClient, string>();

/**
 * Read the payload named by AGENT_PAYLOAD_URL: an https:// URL (a presigned GET) or an absolute file path.
 * The URL is a secret: errors name what went wrong, never the URL.
 */
export async function fetchPayload(location: string, fetchImpl: Fetch = fetch): Promise<AgentPayload> {
  if (/^https?:\/\//i.test(location)) {
    const res = await fetchImpl(location, { signal: AbortSignal.timeout(60_000) });
    if (!res.ok) throw new Error(`the payload URL answered HTTP ${res.status} (expired or not this task's?)`);
    const body = Buffer.from(await res.arrayBuffer());
    if (body.length > PAYLOAD_MAX_BYTES) throw new Error(`the payload is ${body.length} bytes; the limit is ${PAYLOAD_MAX_BYTES}`);
    return decodePayload(body.toString("utf8"), "AGENT_PAYLOAD_URL");
  }
  if (!path.isAbsolute(location)) throw new Error("AGENT_PAYLOAD_URL must be an https:// URL or an absolute file path");
  return decodePayload(await readFile(location, "utf8"), location);
}
