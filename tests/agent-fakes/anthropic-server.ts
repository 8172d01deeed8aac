/**
 * A scripted Anthropic Messages API on 127.0.0.1, for running the real Claude Code loop offline. It answers
 * the first model turn that offers tools with one `Write` tool call (the file and content the test chose), and
 * every later turn, or a request without tools (Claude Code's side calls), with a short text that ends the turn.
 * Streaming (SSE) and plain JSON answers are both served, as Claude Code uses both.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { listenLocal } from "./listen";

export interface ScriptedEdit {
  filePath: string;
  content: string;
}

export interface FakeAnthropic {
  url: string;
  /** Every request body received on /v1/messages, in order. */
  requests: { path: string; body: any; headers: IncomingMessage["headers"] }[];
  close(): Promise<void>;
}

type Block = { type: "text"; text: string } | { type: "tool_use"; id: string; name: string; input: unknown };

function hasToolResult(body: any): boolean {
  return (body.messages ?? []).some(
    (m: any) => m.role === "user" && Array.isArray(m.content) && m.content.some((c: any) => c.type === "tool_result"),
  );
}

function offersWrite(body: any): boolean {
  return (body.tools ?? []).some((t: any) => t.name === "Write");
}

export function plan(body: any, edit: ScriptedEdit, counter: { n: number }): { blocks: Block[]; stop: string } {
  if (offersWrite(body) && !hasToolResult(body)) {
    counter.n++;
    return {
      blocks: [{ type: "tool_use", id: `toolu_fake${String(counter.n).padStart(4, "0")}`, name: "Write", input: { file_path: edit.filePath, content: edit.content } }],
      stop: "tool_use",
    };
  }
  return { blocks: [{ type: "text", text: "Done: the file is written." }], stop: "end_turn" };
}

function sse(res: ServerResponse, event: string, data: unknown): void {
  res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

export async function startFakeAnthropic(edit: ScriptedEdit): Promise<FakeAnthropic> {
  const requests: FakeAnthropic["requests"] = [];
  const counter = { n: 0 };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://x");
      let body: any = {};
      try {
        body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString("utf8")) : {};
      } catch {
        body = {};
      }
      requests.push({ path: url.pathname, body, headers: req.headers });
      if (req.method === "POST" && url.pathname === "/v1/messages/count_tokens") {
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ input_tokens: 100 }));
        return;
      }
      if (req.method !== "POST" || url.pathname !== "/v1/messages") {
        res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ type: "error", error: { type: "not_found_error", message: url.pathname } }));
        return;
      }
      const { blocks, stop } = plan(body, edit, counter);
      const id = `msg_fake${requests.length}`;
      const model = body.model ?? "claude-fake";
      const usage = { input_tokens: 100, output_tokens: 20, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };
      if (!body.stream) {
        res.writeHead(200, { "content-type": "application/json", "request-id": id }).end(
          JSON.stringify({ id, type: "message", role: "assistant", model, content: blocks, stop_reason: stop, stop_sequence: null, usage }),
        );
        return;
      }
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", "request-id": id });
      sse(res, "message_start", { type: "message_start", message: { id, type: "message", role: "assistant", model, content: [], stop_reason: null, stop_sequence: null, usage: { ...usage, output_tokens: 1 } } });
      blocks.forEach((b, index) => {
        if (b.type === "text") {
          sse(res, "content_block_start", { type: "content_block_start", index, content_block: { type: "text", text: "" } });
          sse(res, "content_block_delta", { type: "content_block_delta", index, delta: { type: "text_delta", text: b.text } });
        } else {
          sse(res, "content_block_start", { type: "content_block_start", index, content_block: { type: "tool_use", id: b.id, name: b.name, input: {} } });
          sse(res, "content_block_delta", { type: "content_block_delta", index, delta: { type: "input_json_delta", partial_json: JSON.stringify(b.input) } });
        }
        sse(res, "content_block_stop", { type: "content_block_stop", index });
      });
      sse(res, "message_delta", { type: "message_delta", delta: { stop_reason: stop, stop_sequence: null }, usage: { output_tokens: usage.output_tokens } });
      sse(res, "message_stop", { type: "message_stop" });
      res.end();
    });
  });
  const listening = await listenLocal(server);
  return { url: listening.url, requests, close: listening.close };
}
