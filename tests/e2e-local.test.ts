/**
 * End to end on the local platform, through the real CLI binary: submit → watch to COMPLETED; a long task
 * cancelled from the CLI leaves no agent process behind; `npm start` runs the demo to COMPLETED.
 */
import { spawn } from "node:child_process";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect } from "chai";
import { startLocalPlatform, type LocalPlatform } from "../runtime/local/platform";
import type { TaskRecord } from "../runtime/tasks/record";

const ROOT = path.resolve(__dirname, "..");
const BIN = path.join(ROOT, "bin", "agent-compute.js");

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment of a fresh shell: no AWS settings inherited from the test harness (moto). */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("AWS_") && k !== "AGENT_COMPUTE_API_URL"));
}

function run(command: string, args: string[], options: { cwd?: string; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd ?? ROOT, env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${command} ${args.join(" ")} did not finish in ${options.timeoutMs} ms\n${stdout}\n${stderr}`));
    }, options.timeoutMs ?? 60_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe("end to end on the local platform via the CLI", function () {
  this.timeout(120_000);
  let platform: LocalPlatform;
  let stateDir: string;
  const cli = (...args: string[]) => run(process.execPath, [BIN, "--api-url", platform.url, ...args]);

  before(async () => {
    stateDir = await fs.mkdtemp(path.join(os.tmpdir(), "e2e-local-"));
    platform = await startLocalPlatform({ stateDir, port: 0 });
  });
  after(async () => {
    await platform?.close();
    await fs.rm(stateDir, { recursive: true, force: true });
  });

  it("submit, then watch to COMPLETED (exit 0), showing RUNNING, a heartbeat and the events", async () => {
    const promptFile = path.join(stateDir, "prompt.md");
    await fs.writeFile(promptFile, "Add a CHANGELOG entry\n'quotes' \"and\" $(not a command)\n");
    const args = ["submit", "https://github.com/acme/app", "--prompt-file", promptFile, "--context", '{"work_seconds": 3}', "--idempotency-key", "e2e-1"];
    const submitted = await cli(...args);
    expect(submitted.code, submitted.stderr).to.equal(0);
    const taskId = submitted.stdout.trim();
    expect(taskId).to.match(/^[0-9a-f]{32}$/);
    const payload = await platform.runtime.payloads.get((await platform.runtime.tasks.get(taskId))!.payload_uri!);
    expect(payload.prompt).to.equal(await fs.readFile(promptFile, "utf8"));

    const watched = await cli("watch", taskId, "--interval", "0.5");
    expect(watched.code, watched.stdout + watched.stderr).to.equal(0);
    expect(watched.stdout).to.match(/RUNNING[\s\S]*heartbeat \d+s ago[\s\S]*COMPLETED/);
    expect(watched.stdout).to.contain("reference agent started");
    expect(watched.stdout.trim().split("\n").pop()).to.match(new RegExp(`^task ${taskId} COMPLETED`));

    const record = await platform.runtime.tasks.get(taskId);
    expect(record).to.include({ status: "COMPLETED", user_id: platform.userId, exit_code: 0 });

    const again = await cli(...args);
    expect(again.stdout.trim(), "same idempotency key → same task").to.equal(taskId);

    const listed = await cli("list", "--status", "COMPLETED");
    expect(listed.stdout).to.contain(taskId);
    const events = await cli("events", taskId);
    expect(events.stdout).to.match(/SUBMITTED|submitted/);
  });

  it("a long task cancelled from the CLI is CANCELLED and its agent process is gone", async () => {
    const submitted = await cli("submit", "https://github.com/acme/app", "Work for a long time", "--context", '{"work_seconds": 600}');
    expect(submitted.code, submitted.stderr).to.equal(0);
    const taskId = submitted.stdout.trim();
    const running = await until("the agent to report RUNNING", async () => {
      const t = await platform.runtime.tasks.get(taskId);
      return t?.status === "RUNNING" && t.compute_metadata?.type === "local" ? t : undefined;
    });
    const pid = (running.compute_metadata as Extract<TaskRecord["compute_metadata"], { type: "local" }>).pid;
    expect(isAlive(pid), "agent alive before cancel").to.equal(true);

    const cancelled = await cli("cancel", taskId, "--reason", "not needed");
    expect(cancelled.code, cancelled.stderr).to.equal(0);
    expect(cancelled.stdout).to.contain(`${taskId} CANCELLED`);

    await until("the agent process to exit", async () => (isAlive(pid) ? undefined : true), 15_000);
    expect((await platform.runtime.tasks.get(taskId))!.status).to.equal("CANCELLED");

    const watched = await cli("watch", taskId);
    expect(watched.code).to.equal(1);
    expect(watched.stdout).to.contain("CANCELLED");
    const again = await cli("cancel", taskId);
    expect(again.code).to.equal(2);
    expect(again.stderr).to.match(/^agent-compute: HTTP 409: .*CANCELLED/);
  });

  it("a bad submit prints one clear line naming the field and exits non-zero", async () => {
    const res = await cli("submit", "http://github.com/acme/app", "x");
    expect(res.code).to.equal(2);
    expect(res.stdout).to.equal("");
    expect(res.stderr.trim().split("\n")).to.have.length(1);
    expect(res.stderr).to.match(/HTTP 400: repo_url must use https.*\(field: repo_url\)/);
  });

  it("without --api-url and no local platform running, says how to start one", async () => {
    const empty = await fs.mkdtemp(path.join(os.tmpdir(), "e2e-nolocal-"));
    const res = await run(process.execPath, [BIN, "list"], { cwd: empty });
    await fs.rm(empty, { recursive: true, force: true });
    expect(res.code).to.equal(2);
    expect(res.stderr).to.contain("agent-compute local");
  });
});

describe("npm start (the demo)", function () {
  this.timeout(120_000);

  it("runs the demo task to COMPLETED, printing the lifecycle, and exits 0", async () => {
    const res = await run("npm", ["start", "--silent"], { timeoutMs: 110_000 });
    expect(res.code, res.stdout + res.stderr).to.equal(0);
    expect(res.stdout).to.match(/submitted task [0-9a-f]{32}/);
    // The demo task takes about a second, so the watch may never poll it while RUNNING: the lifecycle is
    // checked through the events, which the watch prints in full whatever its poll timing.
    expect(res.stdout).to.match(/SUBMITTED[\s\S]*status +admitted[\s\S]*status +the agent is running[\s\S]*pushed agent\/[\s\S]*status +task COMPLETED[\s\S]*COMPLETED +elapsed/);
    expect(res.stdout).to.contain("demo COMPLETED");
    expect(res.stdout).to.contain("shutting down the local platform");
  });
});

describe("agent-compute local (serve until Ctrl-C)", function () {
  this.timeout(90_000);

  it("serves the API that the CLI finds without --api-url, and shuts down cleanly on SIGINT", async () => {
    const cwd = await fs.mkdtemp(path.join(os.tmpdir(), "e2e-serve-"));
    const server = spawn(process.execPath, [BIN, "local", "--port", "0"], { cwd, env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    server.stdout.on("data", (d) => (out += d));
    server.stderr.on("data", (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => server.on("close", resolve));
    try {
      const stateFile = path.join(cwd, ".agent-compute", "local.json");
      const state = await until("local.json", async () => {
        try {
          return JSON.parse(await fs.readFile(stateFile, "utf8")) as { url: string; pid: number };
        } catch {
          return undefined;
        }
      });
      expect(state.url).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(state.pid).to.equal(server.pid);

      const submitted = await run(process.execPath, [BIN, "submit", "https://github.com/acme/app", "quick", "--context", '{"work_seconds": 0}', "--watch"], { cwd });
      expect(submitted.code, submitted.stdout + submitted.stderr).to.equal(0);
      expect(submitted.stdout).to.contain("COMPLETED");

      server.kill("SIGINT");
      expect(await exited, out).to.equal(0);
      expect(out).to.contain("stopped");
      await fs.access(stateFile).then(
        () => expect.fail("local.json should be removed on shutdown"),
        () => undefined,
      );
    } finally {
      if (server.exitCode === null) server.kill("SIGKILL");
      await fs.rm(cwd, { recursive: true, force: true });
    }
  });
});
