/**
 * A small agent-channel server for the runner's tests, implementing the routes of docs/agent-contract.md for one
 * task held in memory: bearer-token check, 409 with the actual status, event and result validation with its limits,
 * credentials (or 404). Tests move the task (cancel) and read what the runner sent.
 */
import { createServer, type IncomingHttpHeaders } from "node:http";
import { listenLocal } from "./listen";

export interface FakeTask {
  status: string;
  heartbeats: number;
  events: { type: string; message: string; data?: Record<string, unknown> }[];
  result?: Record<string, any>;
}

export interface FakeChannel {
  url: string;
  task: FakeTask;
  /** Every request as received (path, headers, raw body). */
  requests: { method: string; path: string; headers: IncomingHttpHeaders; body: string }[];
  /** The credentials route answers these (undefined: 404). */
  credentials?: { username: string; token: string };
  /** Fail the next N credentials requests with HTTP 500. */
  failCredentials: number;
  close(): Promise<void>;
}

const TERMINAL = ["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"];
const RESULT_KEYS = new Set(["status", "exit_code", "error_message", "pr_url", "cost_usd", "turns", "summary"]);

export async function startFakeChannel(taskId: string, token: string, options: { credentials?: { username: string; token: string } } = {}): Promise<FakeChannel> {
  const state: FakeChannel = {
    url: "",
    task: { status: "STARTING", heartbeats: 0, events: [] },
    requests: [],
    credentials: options.credentials,
    failCredentials: 0,
    close: async () => undefined,
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks).toString("utf8");
      state.requests.push({ method: req.method ?? "", path: req.url ?? "", headers: req.headers, body: raw });
      const reply = (code: number, body: unknown) => res.writeHead(code, { "content-type": "application/json" }).end(JSON.stringify(body));
      const m = /^\/agent\/v1\/tasks\/([^/]+)\/(running|heartbeat|events|result|credentials)$/.exec(req.url ?? "");
      if (!m) return reply(404, { error: "no such route" });
      const [, id, route] = m;
      if (raw.length > 64 * 1024) return reply(413, { error: "body over 64 KiB" });
      if (req.headers.authorization !== `Bearer ${token}` || id !== taskId) return reply(401, { error: "bad token" });
      let body: any = {};
      try {
        body = raw ? JSON.parse(raw) : {};
      } catch {
        return reply(400, { error: "body is not JSON" });
      }
      const t = state.task;
      const ended = TERMINAL.includes(t.status);
      if (route === "result" && ended && t.result && JSON.stringify(t.result) === JSON.stringify(body)) return reply(409, { status: t.status });
      if (ended && route !== "running") return reply(401, { error: `task ${taskId} has ended` });
      switch (route) {
        case "running":
          if (t.status === "STARTING" || t.status === "RUNNING") {
            t.status = "RUNNING";
            return reply(200, { status: "RUNNING" });
          }
          return reply(409, { status: t.status });
        case "heartbeat":
          t.heartbeats++;
          return reply(200, { status: t.status });
        case "events": {
          if (!["info", "progress", "error"].includes(body.type)) return reply(400, { error: "type" });
          if (typeof body.message !== "string" || body.message.length > 2000) return reply(400, { error: "message" });
          if (body.data !== undefined && Buffer.byteLength(JSON.stringify(body.data)) > 8192) return reply(413, { error: "data" });
          t.events.push(body);
          return reply(202, {});
        }
        case "result": {
          const unknown = Object.keys(body).filter((k) => !RESULT_KEYS.has(k));
          if (unknown.length) return reply(400, { error: `unknown field ${unknown[0]}` });
          if (body.status !== "COMPLETED" && body.status !== "FAILED") return reply(400, { error: "status" });
          if (!Number.isInteger(body.exit_code)) return reply(400, { error: "exit_code" });
          if (body.status === "FAILED" && !(typeof body.error_message === "string" && body.error_message.length <= 2000)) return reply(400, { error: "error_message" });
          if (body.summary !== undefined && body.summary.length > 4000) return reply(400, { error: "summary" });
          if (body.pr_url !== undefined && !String(body.pr_url).startsWith("https://")) return reply(400, { error: "pr_url" });
          t.status = body.status;
          t.result = body;
          return reply(200, { status: t.status });
        }
        case "credentials":
          if (state.failCredentials > 0) {
            state.failCredentials--;
            return reply(500, { error: "provider unavailable" });
          }
          if (!state.credentials) return reply(404, { error: "no repository credentials are configured for this repository" });
          return reply(200, { git: { ...state.credentials } });
      }
    });
  });
  const listening = await listenLocal(server);
  state.url = listening.url;
  state.close = listening.close;
  return state;
}
