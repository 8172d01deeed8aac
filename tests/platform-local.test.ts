import { createHash, randomBytes } from "node:crypto";
import { existsSync, promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect } from "chai";
import { startLocalPlatform } from "../runtime/local/platform";
import { MAX_BODY_BYTES, foreignRequestRefusal } from "../runtime/local/http-server";

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("local platform", function () {
  this.timeout(60_000);
  let stateDir: string;
  beforeEach(async () => {
    stateDir = await fs.mkdtemp(path.join(os.tmpdir(), "platform-"));
  });
  afterEach(async () => fs.rm(stateDir, { recursive: true, force: true }));

  it("enables only the local backend, with file payloads under its state folder, the embedded store, and its own URL as the agents' channel", async () => {
    const p = await startLocalPlatform({ stateDir, userId: "dev" });
    try {
      expect(p.config.enabledBackends).to.deep.equal(["local"]);
      expect(p.config.payload).to.deep.equal({ kind: "file", dir: path.join(stateDir, "payloads") });
      expect(p.config.endpoints?.dynamodb).to.equal(p.store.endpoint);
      // Agents report through the loopback API's channel; their environment holds no store endpoint or credentials.
      expect(p.config.agentChannel?.url).to.equal(p.url);
      expect(Object.keys(p.config.local?.env ?? {})).to.deep.equal(["AGENT_HEARTBEAT_SECONDS"]);
      expect(p.url).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
      const other = await fetch(`${p.url}/tasks`, { method: "POST", body: JSON.stringify({ repo_url: "https://github.com/a/b", prompt: "x", backend: "ecs" }) });
      expect(other.status).to.equal(400);
      expect(((await other.json()) as { field: string }).field).to.equal("backend");
    } finally {
      await p.close();
    }
  });

  it("a hostile 1 MiB prompt submitted over HTTP reaches the agent byte for byte and runs nothing", async () => {
    const marker = path.join(os.tmpdir(), `pwned-${randomBytes(6).toString("hex")}`);
    const head = [
      `it's "quoted" $(touch ${marker}) and \`touch ${marker}\``,
      `; touch ${marker} && echo pwned | sh`,
      `\${IFS}$(touch\${IFS}${marker})\r\n\t\u0000 -- --help`,
      "",
    ].join("\n");
    const prompt = head + "y".repeat(1024 * 1024 - Buffer.byteLength(head));
    expect(Buffer.byteLength(prompt)).to.equal(1024 * 1024);
    const p = await startLocalPlatform({ stateDir, userId: "mallory" });
    try {
      const res = await fetch(`${p.url}/tasks`, {
        method: "POST",
        body: JSON.stringify({ repo_url: "https://github.com/a/b", prompt, context: { work_seconds: 0 } }),
      });
      expect(res.status).to.equal(201);
      const taskId = ((await res.json()) as { task: { task_id: string } }).task.task_id;
      const end = Date.now() + 30_000;
      let status = "";
      while (!["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"].includes(status)) {
        if (Date.now() > end) throw new Error(`task did not finish: ${status}`);
        await new Promise((r) => setTimeout(r, 200));
        status = (await p.runtime.tasks.get(taskId))!.status;
      }
      expect(status).to.equal("COMPLETED");
      const events = (await p.runtime.events.list(taskId, { limit: 100 })).items.map((e) => e.message);
      // The agent's own digest of the prompt it read from the payload file.
      expect(events).to.include(`prompt sha256 ${createHash("sha256").update(prompt, "utf8").digest("hex")}`);
      expect(events).to.include("reference agent started: prompt of 1048576 bytes, 5 lines");
      expect(existsSync(marker), "a command in the prompt ran").to.equal(false);
    } finally {
      await p.close();
    }
  });

  it("refuses browser and foreign-host requests before reading them (a web page or DNS rebinding cannot submit)", async () => {
    const p = await startLocalPlatform({ stateDir });
    try {
      const body = JSON.stringify({ repo_url: "https://github.com/a/b", prompt: "x" });
      const fromPage = await fetch(`${p.url}/tasks`, { method: "POST", headers: { origin: "https://evil.example" }, body });
      expect(fromPage.status).to.equal(403);
      expect(((await fromPage.json()) as { error: string }).error).to.match(/Origin/);
      expect((await p.runtime.tasks.listByUser(p.userId)).items).to.have.length(0);
    } finally {
      await p.close();
    }
  });

  const hostCases: Array<[string, Record<string, string | undefined>, boolean]> = [
    ["the served host and port", { host: "127.0.0.1:4000" }, true],
    ["localhost on the same port", { host: "localhost:4000" }, true],
    ["a rebinding host name", { host: "evil.example:4000" }, false],
    ["another port", { host: "127.0.0.1:4001" }, false],
    ["no Host header", {}, false],
    ["any Origin, even local", { host: "127.0.0.1:4000", origin: "http://127.0.0.1:4000" }, false],
  ];
  for (const [name, headers, accepted] of hostCases) {
    it(`local API guard: ${name} is ${accepted ? "accepted" : "refused"}`, () => {
      expect(foreignRequestRefusal(headers, "127.0.0.1", 4000) === undefined).to.equal(accepted);
    });
  }

  it("writes local.json for the CLI and removes it on close", async () => {
    const p = await startLocalPlatform({ stateDir, writeStateFile: true });
    const file = path.join(stateDir, "local.json");
    expect(JSON.parse(await fs.readFile(file, "utf8"))).to.include({ url: p.url, pid: process.pid });
    await p.close();
    const gone = await fs.access(file).then(() => false, () => true);
    expect(gone).to.equal(true);
  });

  it("refuses a body over the limit with 413 without buffering it", async () => {
    const p = await startLocalPlatform({ stateDir });
    try {
      const res = await fetch(`${p.url}/tasks`, { method: "POST", body: "x".repeat(MAX_BODY_BYTES + 1) });
      expect(res.status).to.equal(413);
      expect(((await res.json()) as { field: string }).field).to.equal("body");
    } finally {
      await p.close();
    }
  });

  it("on close, cancels the tasks it is still running and stops their agents", async () => {
    const logged: string[] = [];
    const p = await startLocalPlatform({ stateDir, userId: "dev", log: (line) => logged.push(line) });
    let pid = 0;
    let taskId = "";
    try {
      const res = await fetch(`${p.url}/tasks`, {
        method: "POST",
        body: JSON.stringify({ repo_url: "https://github.com/a/b", prompt: "long", context: { work_seconds: 600 } }),
      });
      expect(res.status).to.equal(201);
      taskId = ((await res.json()) as { task: { task_id: string } }).task.task_id;
      const end = Date.now() + 30_000;
      for (;;) {
        const t = await p.runtime.tasks.get(taskId);
        if (t?.status === "RUNNING" && t.compute_metadata?.type === "local") {
          pid = t.compute_metadata.pid;
          break;
        }
        if (Date.now() > end) throw new Error(`task never reached RUNNING: ${JSON.stringify(t)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(isAlive(pid)).to.equal(true);
    } finally {
      await p.close();
    }
    expect(logged).to.include(`cancelled task ${taskId}: the local platform shut down`);
    const end = Date.now() + 10_000;
    while (isAlive(pid) && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
    expect(isAlive(pid), "agent process still alive after close").to.equal(false);
  });
});
