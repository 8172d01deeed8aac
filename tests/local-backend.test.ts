import { randomBytes } from "node:crypto";
import { spawnSync } from "node:child_process";
import { existsSync, promises as fs, readFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect } from "chai";
import { LocalStrategy, nodeEntryCommand, referenceAgentCommand, statusOfExit } from "../runtime/compute/local";
import type { LocalHandle } from "../runtime/compute/handle";
import type { RuntimeConfig } from "../runtime/config";
import { DEFAULT_LIMITS } from "../runtime/limits";
import { startEmbeddedStore, type EmbeddedStore } from "../runtime/local/embedded-store";
import type { AgentPayload } from "../runtime/ports";
import { startLocalChannel, type LocalChannel } from "./channel-helpers";
import type { TaskRecord } from "../runtime/tasks/record";
import { DynamoEventLog } from "../runtime/tasks/events";
import { DynamoTaskStore } from "../runtime/tasks/store";

/** Wait for a real child process; these tests run real agents, so real time passes (briefly). */
async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, withinMs = 20_000): Promise<T> {
  const until = Date.now() + withinMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function gone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ESRCH";
  }
}

describe("local backend (embedded store + real agent processes)", function () {
  this.timeout(60_000);
  let store: EmbeddedStore;
  let workDir: string;
  let config: RuntimeConfig;
  let tasks: DynamoTaskStore;
  let events: DynamoEventLog;
  let channel: LocalChannel;

  before(async () => {
    store = await startEmbeddedStore({ tablePrefix: `local-${randomBytes(3).toString("hex")}` });
    workDir = await fs.mkdtemp(path.join(os.tmpdir(), "local-backend-"));
    channel = await startLocalChannel(store, workDir, { heartbeatSeconds: 0.2, limits: DEFAULT_LIMITS });
    config = channel.config;
    tasks = new DynamoTaskStore(config);
    events = new DynamoEventLog(config);
  });
  after(async () => {
    await channel?.close();
    await store?.close();
    await fs.rm(workDir, { recursive: true, force: true });
  });

  /** What the orchestrator does before startSession: a STARTING record, the payload file, the agent's token. */
  async function prepare(prompt: string, context: Record<string, unknown>): Promise<{ task: TaskRecord; payloadUrl: string }> {
    const now = new Date().toISOString();
    const task: TaskRecord = {
      task_id: `local-${randomBytes(5).toString("hex")}`,
      user_id: "dev",
      status: "STARTING",
      repo_url: "https://github.com/acme/app",
      prompt,
      created_at: now,
      updated_at: now,
    };
    const payload: AgentPayload = { task_id: task.task_id, repo_url: task.repo_url, prompt, context };
    return channel.prepare(task, payload);
  }

  async function exitOf(strategy: LocalStrategy, handle: LocalHandle) {
    return waitFor("the agent to exit", async () => {
      const s = await strategy.pollSession(handle);
      return s.state === "EXITED" ? s : undefined;
    });
  }

  it("runs the reference agent: RUNNING, advancing heartbeats, then COMPLETED with exit 0", async () => {
    const strategy = new LocalStrategy(config);
    // The channel writes at most one heartbeat a second (MIN_HEARTBEAT_WRITE_MS), so three need over two seconds.
    const req = await prepare("add a README\nplease", { work_seconds: 3.5 });
    const handle = await strategy.startSession(req);
    expect(handle.type).to.equal("local");
    expect(handle.runDir).to.equal(path.join(workDir, "runs", req.task.task_id));
    expect((await strategy.pollSession(handle)).state).to.equal("RUNNING");

    const beats = new Set<string>();
    await waitFor("three distinct heartbeats while RUNNING", async () => {
      const t = await tasks.get(req.task.task_id);
      if (t?.status === "RUNNING" && t.agent_heartbeat_at) beats.add(t.agent_heartbeat_at);
      return beats.size >= 3 ? true : undefined;
    });
    const ordered = [...beats];
    expect([...ordered].sort()).to.deep.equal(ordered);

    const exit = await exitOf(strategy, handle);
    expect(exit.exitCode).to.equal(0);
    const done = await tasks.get(req.task.task_id);
    expect(done?.status).to.equal("COMPLETED");
    expect(done?.exit_code).to.equal(0);
    expect(done?.finished_at).to.be.a("string");
    const messages = (await events.list(req.task.task_id, { limit: 100 })).items.map((e) => e.message);
    expect(messages[0]).to.equal("the agent is running");
    expect(messages[1]).to.match(/^reference agent started/);
    expect(messages.some((m) => m.startsWith("prompt sha256 "))).to.equal(true);
    expect(JSON.parse(readFileSync(path.join(handle.runDir, "exit.json"), "utf8"))).to.deep.equal({ code: 0, signal: null });
    expect(readFileSync(path.join(handle.runDir, "agent.log"), "utf8")).to.contain("COMPLETED");
  });

  it("a failing agent ends FAILED with its exit code, on the record and from the process", async () => {
    const strategy = new LocalStrategy(config);
    const req = await prepare("fail please", { work_seconds: 0, fail_with_exit_code: 7 });
    const handle = await strategy.startSession(req);
    const exit = await exitOf(strategy, handle);
    expect(exit.exitCode).to.equal(7);
    const t = await tasks.get(req.task.task_id);
    expect(t?.status).to.equal("FAILED");
    expect(t?.exit_code).to.equal(7);
    expect(t?.error_message).to.contain("fail_with_exit_code");
  });

  it("another process learns the exit from exit.json, and a retried start returns the same run", async () => {
    const strategy = new LocalStrategy(config);
    const req = await prepare("x", { work_seconds: 0.3 });
    const handle = await strategy.startSession(req);
    const again = await strategy.startSession(req);
    expect(again).to.deep.equal(handle);
    expect(await new LocalStrategy(config).startSession(req)).to.deep.equal(handle);
    await exitOf(strategy, handle);
    const other = new LocalStrategy(config);
    expect(await other.pollSession(handle)).to.include({ state: "EXITED", exitCode: 0 });
    expect(await other.startSession(req)).to.deep.equal(handle);
  });

  it("stopSession from another process leaves alone a live pid that is not this task's agent", async () => {
    const { spawn } = await import("node:child_process");
    const stranger = spawn("sleep", ["30"], { detached: true, stdio: "ignore" });
    try {
      const runDir = path.join(workDir, "runs", "recycled-task");
      await new LocalStrategy(config, { stopGraceMs: 50 }).stopSession({ type: "local", pid: stranger.pid!, runDir }, "test");
      expect(gone(stranger.pid!)).to.equal(false);
    } finally {
      stranger.kill("SIGKILL");
    }
  });

  it("a process that is gone without an exit record is LOST", async () => {
    const dead = spawnSync(process.execPath, ["-e", "0"]).pid;
    const runDir = path.join(workDir, "runs", "lost-task");
    await fs.mkdir(runDir, { recursive: true });
    const s = await new LocalStrategy(config).pollSession({ type: "local", pid: dead, runDir });
    expect(s.state).to.equal("LOST");
    expect(s.reason).to.contain(String(dead));
  });

  it("stopSession kills the whole process group, escalating to SIGKILL after the grace period", async () => {
    const script = [
      "process.on('SIGTERM', () => {});", // the leader ignores SIGTERM: only SIGKILL ends it
      "const c = require('child_process').spawn('sleep', ['30'], { stdio: 'ignore' });",
      "require('fs').writeFileSync('grandchild.pid', String(c.pid));",
      "setInterval(() => {}, 1000);",
    ].join("\n");
    const strategy = new LocalStrategy({ ...config, local: { ...config.local!, command: [process.execPath, "-e", script] } }, { stopGraceMs: 300, stopPollMs: 20 });
    const req = await prepare("stop me", {});
    const handle = await strategy.startSession(req);
    const grandchild = await waitFor("the grandchild pid", async () => {
      const f = path.join(handle.runDir, "grandchild.pid");
      return existsSync(f) && readFileSync(f, "utf8") ? Number(readFileSync(f, "utf8")) : undefined;
    });
    expect(gone(handle.pid)).to.equal(false);
    expect(gone(grandchild)).to.equal(false);
    const t0 = Date.now();
    await strategy.stopSession(handle, "cancelled by test");
    expect(Date.now() - t0).to.be.greaterThanOrEqual(250);
    expect(gone(handle.pid)).to.equal(true);
    expect(await waitFor("the grandchild to be reaped", async () => (gone(grandchild) ? true : undefined), 3000)).to.equal(true);
    expect(await strategy.pollSession(handle)).to.deep.include({ state: "EXITED", exitCode: 137 });
    await strategy.stopSession(handle, "again"); // already gone: no error
  });

  it("runs any command with any argv, in its run folder, with exactly the contract's environment", async () => {
    const script =
      "const fs = require('fs'); fs.writeFileSync('seen.json', JSON.stringify({ argv: process.argv.slice(1), env: process.env, cwd: process.cwd() })); process.exit(3);";
    const strategy = new LocalStrategy({
      ...config,
      local: { ...config.local!, command: [process.execPath, "-e", script, "two words", "--flag=$(not-expanded)"], env: { EXTRA: "1" } },
    });
    const req = await prepare("argv test", {});
    const handle = await strategy.startSession(req);
    expect((await exitOf(strategy, handle)).exitCode).to.equal(3);
    const seen = JSON.parse(readFileSync(path.join(handle.runDir, "seen.json"), "utf8"));
    expect(seen.argv).to.deep.equal(["two words", "--flag=$(not-expanded)"]);
    expect(seen.cwd).to.equal(handle.runDir);
    // No store endpoint, no table names, no AWS credentials: the agent has only its task id and payload file.
    const expected = ["AGENT_PAYLOAD_URL", "EXTRA", "TASK_ID"];
    if (process.env.PATH) expected.push("PATH");
    if (process.env.HOME) expected.push("HOME");
    expect(Object.keys(seen.env).filter((k) => k !== "NODE_CHANNEL_FD").sort()).to.deep.equal(expected.sort());
    expect(seen.env).to.include({ TASK_ID: req.task.task_id, AGENT_PAYLOAD_URL: req.payloadUrl });
  });

  it("an agent whose run folder was removed while it ran still exits cleanly: no uncaught error in this process", async () => {
    // Before the fix, writing exit.json into the vanished folder threw inside the child's exit listener, an
    // uncaught exception that would end the platform process (mocha reports it as a failure of this test).
    const strategy = new LocalStrategy({
      ...config,
      local: { ...config.local!, command: [process.execPath, "-e", "setTimeout(() => process.exit(5), 300)"] },
    });
    const req = await prepare("run folder removed", {});
    const handle = await strategy.startSession(req);
    await fs.rm(handle.runDir, { recursive: true, force: true });
    expect((await exitOf(strategy, handle)).exitCode).to.equal(5);
    await new Promise((r) => setImmediate(r));
    expect(existsSync(handle.runDir)).to.equal(false);
  });

  it("a command that cannot start fails startSession with a message naming it", async () => {
    const strategy = new LocalStrategy({ ...config, local: { ...config.local!, command: ["/nonexistent/agent-binary"] } });
    const req = await prepare("x", {});
    const err = await strategy.startSession(req).catch((e) => e);
    expect(err).to.be.instanceOf(Error);
    expect(err.message).to.contain("/nonexistent/agent-binary");
  });

  it("the default command is the reference agent through ts-node when running from sources", () => {
    const cmd = referenceAgentCommand();
    expect(cmd[0]).to.equal(process.execPath);
    expect(cmd[cmd.length - 1]).to.match(/runtime\/agent\/reference-agent\.ts$/);
    expect(cmd).to.include(require.resolve("ts-node/dist/bin")).and.include("--transpile-only");
    expect(cmd[cmd.indexOf("--project") + 1]).to.equal(path.resolve(__dirname, "..", "tsconfig.json"));
    expect(() => nodeEntryCommand("relative/path")).to.throw(RangeError);
    expect(() => nodeEntryCommand("/no/such/entry")).to.throw(/not found/);
  });

  const exits: [Parameters<typeof statusOfExit>[0], number | undefined][] = [
    [{ code: 0, signal: null }, 0],
    [{ code: 42, signal: null }, 42],
    [{ code: null, signal: "SIGKILL" }, 137],
    [{ code: null, signal: "SIGTERM" }, 143],
  ];
  for (const [exit, code] of exits) {
    it(`reports ${JSON.stringify(exit)} as EXITED with exit code ${code}`, () => {
      expect(statusOfExit(exit)).to.include({ state: "EXITED", exitCode: code });
    });
  }
});
