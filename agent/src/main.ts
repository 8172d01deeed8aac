/**
 * The runner's entry point (the image's ENTRYPOINT).
 *   - With TASK_ID and AGENT_PAYLOAD_URL set (ECS, the EC2 fleet, the local backend): run that task, exit with its code.
 *   - Without them (AgentCore, whose environment is fixed per runtime): serve AgentCore's HTTP contract on
 *     0.0.0.0:8080 (AGENT_LISTEN_PORT overrides it, for tests) — POST /invocations {"task_id","payload_url"} starts the task in the background and answers at
 *     once; GET /ping says HealthyBusy while a task runs, Healthy otherwise.
 * SIGTERM stops the agent's process tree and exits without writing a result (the platform already decided).
 */
import { createServer } from "node:http";
import { EXIT } from "./outcome";
import { readTaskInput } from "./payload";
import { runTask } from "./runner";
import { readSettings } from "./settings";

const log = (line: string) => process.stdout.write(`${line}\n`);

async function main(): Promise<number> {
  let settings;
  try {
    settings = readSettings(process.env);
  } catch (err) {
    log(`[runner] unusable settings: ${(err as Error).message}`);
    return EXIT.SETUP;
  }
  const stop = new AbortController();
  process.once("SIGTERM", () => stop.abort());
  process.once("SIGINT", () => stop.abort());
  if (process.env.TASK_ID || process.env.AGENT_PAYLOAD_URL) {
    let input;
    try {
      input = readTaskInput(process.env);
    } catch (err) {
      log(`[runner] ${(err as Error).message}`);
      return EXIT.SETUP;
    }
    return runTask(input, settings, { env: process.env, log, stop: stop.signal });
  }
  return serveAgentCore(settings, stop.signal);
}

async function serveAgentCore(settings: ReturnType<typeof readSettings>, stop: AbortSignal): Promise<number> {
  let busy = 0;
  const server = createServer((req, res) => {
    const reply = (code: number, body: unknown) => res.writeHead(code, { "content-type": "application/json" }).end(JSON.stringify(body));
    if (req.method === "GET" && req.url === "/ping") return reply(200, { status: busy > 0 ? "HealthyBusy" : "Healthy" });
    if (req.method !== "POST" || req.url !== "/invocations") return reply(404, { error: "not found" });
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      let body: any;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        return reply(400, { error: "the invocation body is not JSON" });
      }
      if (typeof body?.task_id !== "string" || typeof body?.payload_url !== "string") return reply(400, { error: "task_id and payload_url are required" });
      busy++;
      void runTask({ taskId: body.task_id, payloadUrl: body.payload_url }, settings, { env: process.env, log, stop }).finally(() => busy--);
      reply(200, { status: "accepted", task_id: body.task_id });
    });
  });
  const port = Number(process.env.AGENT_LISTEN_PORT) || 8080;
  await new Promise<void>((resolve) => server.listen(port, "0.0.0.0", resolve));
  log(`[runner] serving AgentCore invocations on :${port}`);
  await new Promise<void>((resolve) => stop.addEventListener("abort", () => resolve(), { once: true }));
  server.close();
  return EXIT.STOPPED;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`[runner] ${(err as Error).stack ?? String(err)}\n`);
    process.exit(EXIT.ERROR);
  },
);
