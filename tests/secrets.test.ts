/**
 * Secrets stay secret: after real runs on the local platform (a channel agent that fetches repository
 * credentials and tries refused reports carrying them), and a start step that presigns an S3 payload URL, no
 * token, payload URL or credential appears in any sink: task records, events, API answers, the CLI's output, the
 * platform's log, the console, or any file the runs left behind.
 */
import { spawn } from "node:child_process";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DynamoDBClient, ScanCommand } from "@aws-sdk/client-dynamodb";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { expect } from "chai";
import { awsClient } from "../runtime/aws/clients";
import { startLocalPlatform, type LocalPlatform } from "../runtime/local/platform";
import { startTask } from "../runtime/orchestrator/start";
import { createTables, createTask, harness, suffix, testConfig } from "./orchestrator-fixtures";

const ROOT = path.resolve(__dirname, "..");
const BIN = path.join(ROOT, "bin", "agent-compute.js");
const GIT_TOKEN = `ghs_${"S3cr3tRepoToken".repeat(3)}`;

/** Everything written to the console while `fn` runs (the platform's and the runtime's own logging). */
async function capturingConsole<T>(fn: () => Promise<T>): Promise<{ value: T; output: string }> {
  const lines: string[] = [];
  const saved = { log: console.log, error: console.error, warn: console.warn, info: console.info };
  for (const k of Object.keys(saved) as (keyof typeof saved)[]) console[k] = (...args: unknown[]) => lines.push(args.map(String).join(" "));
  try {
    return { value: await fn(), output: lines.join("\n") };
  } finally {
    Object.assign(console, saved);
  }
}

function cli(url: string, ...args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("AWS_") && k !== "AGENT_COMPUTE_API_URL"));
    const child = spawn(process.execPath, [BIN, "--api-url", url, ...args], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, out }));
  });
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(p)));
    else out.push(p);
  }
  return out;
}

async function scanAll(client: DynamoDBClient, table: string): Promise<string> {
  const out = await client.send(new ScanCommand({ TableName: table }));
  return JSON.stringify(out.Items ?? []);
}

describe("secrets never reach a sink", function () {
  this.timeout(120_000);
  let stateDir: string;
  let captureDir: string;
  let platform: LocalPlatform;
  const log: string[] = [];

  before(async () => {
    stateDir = await fs.mkdtemp(path.join(os.tmpdir(), "secrets-state-"));
    captureDir = await fs.mkdtemp(path.join(os.tmpdir(), "secrets-capture-"));
    platform = await startLocalPlatform({
      stateDir,
      port: 0,
      agentCommand: [process.execPath, path.join(__dirname, "fixtures", "capturing-agent.js"), captureDir],
      repoCredentials: { getGitCredentials: async () => ({ username: "x-access-token", token: GIT_TOKEN }) },
      log: (line) => log.push(line),
    });
  });
  after(async () => {
    await platform?.close();
    await fs.rm(stateDir, { recursive: true, force: true });
    await fs.rm(captureDir, { recursive: true, force: true });
  });

  it("local platform: tokens, payload locations and repository credentials appear in no record, event, answer, output, log or file", async () => {
    const { value: outputs, output: consoleOutput } = await capturingConsole(async () => {
      const submitted = await cli(platform.url, "submit", "https://github.com/acme/app", "use the repo token");
      expect(submitted.code, submitted.out).to.equal(0);
      const taskId = /[0-9a-f]{32}/.exec(submitted.out)![0];
      const watched = await cli(platform.url, "watch", taskId, "--interval", "0.5");
      expect(watched.code, watched.out).to.equal(0);
      const more = [watched, ...(await Promise.all([cli(platform.url, "get", taskId), cli(platform.url, "list"), cli(platform.url, "events", taskId)]))];
      const api = await Promise.all(
        [`/tasks/${taskId}`, "/tasks", `/tasks/${taskId}/events`].map(async (p) => (await fetch(`${platform.url}${p}`)).text()),
      );
      return { taskId, cliOutput: [submitted, ...more].map((r) => r.out).join("\n"), api: api.join("\n") };
    });
    const captured = JSON.parse(await fs.readFile(path.join(captureDir, `${outputs.taskId}.json`), "utf8")) as { url: string; token: string; git: string };
    expect(captured.git).to.equal(GIT_TOKEN);
    expect(captured.token).to.match(/^[A-Za-z0-9_-]{43}$/);
    const record = await platform.runtime.tasks.get(outputs.taskId);
    expect(record?.status).to.equal("COMPLETED");
    const events = (await platform.runtime.events.list(outputs.taskId, { limit: 200 })).items;
    expect(events.some((e) => e.message === "used the repository credentials"), "the agent's own report arrived").to.equal(true);

    const ddb = awsClient(DynamoDBClient, { region: platform.store.region, endpoint: platform.store.endpoint });
    const sinks: Record<string, string> = {
      "task records": await scanAll(ddb, platform.config.tables.tasks),
      "task events": await scanAll(ddb, platform.config.tables.events),
      "API answers": outputs.api,
      "CLI output": outputs.cliOutput,
      "platform log": log.join("\n"),
      console: consoleOutput,
    };
    // Every file the runs left behind (run folders, agent logs, exit files): the payload itself is gone.
    const files = await filesUnder(stateDir);
    expect(files.filter((f) => f.endsWith("payload.json")), "payload files removed at finalize").to.deep.equal([]);
    for (const f of files) sinks[`file ${path.relative(stateDir, f)}`] = await fs.readFile(f, "utf8");
    expect(Object.keys(sinks).length).to.be.greaterThan(6);
    for (const [sink, text] of Object.entries(sinks)) {
      for (const [what, secret] of Object.entries({ "agent token": captured.token, "repository token": captured.git })) {
        expect(text.includes(secret), `${what} in ${sink}`).to.equal(false);
      }
    }
    // The hash is on the record (that is how tokens are checked) but never shown.
    expect(sinks["task records"]).to.contain("agent_token_sha256");
    expect(outputs.api + outputs.cliOutput).to.not.contain("agent_token_sha256");
  });

  it("AWS start step: the presigned payload URL reaches only the strategy, never the record, the events or the console", async () => {
    const config = { ...testConfig(), payload: { kind: "s3" as const, bucket: `secrets-${suffix()}`, prefix: "payloads/" } };
    await createTables(config);
    await awsClient(S3Client, { region: config.region }).send(new CreateBucketCommand({ Bucket: config.payload.bucket }));
    const h = harness(config, "ecs", async () => ({ state: "RUNNING" }));
    const task = await createTask(h.rt, { backend: "ecs" });
    await h.rt.tasks.transition(task.task_id, "STARTING");
    let handed = "";
    h.strategy.onStart = async (req) => {
      handed = req.payloadUrl;
    };
    const { output } = await capturingConsole(() => startTask(h.rt, task.task_id));
    expect(handed).to.match(/^https?:\/\/.*X-Amz-Signature=[0-9a-f]{64}/);
    const token = (await h.rt.payloads.get(task.payload_uri!)).channel!.token;
    const ddb = awsClient(DynamoDBClient, { region: config.region });
    const sinks = { record: await scanAll(ddb, config.tables.tasks), events: await scanAll(ddb, config.tables.events), console: output };
    for (const [sink, text] of Object.entries(sinks)) {
      expect(text, sink).to.not.contain("X-Amz-Signature");
      expect(text, sink).to.not.contain(handed.split("?")[1]);
      expect(text.includes(token), `token in ${sink}`).to.equal(false);
    }
  });
});
