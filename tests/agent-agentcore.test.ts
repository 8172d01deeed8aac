/**
 * The runner as AgentCore runs it: no TASK_ID in the environment, so it serves POST /invocations and GET /ping.
 * An invocation is acknowledged at once and the task runs in the background (ping says HealthyBusy meanwhile), to
 * the same end as on any other backend: a pushed branch and a COMPLETED result through the channel.
 */
import { expect } from "chai";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { nodeEntryCommand } from "../runtime/compute/local";
import { startFakeChannel } from "./agent-fakes/channel-server";
import { createBareRemote } from "./agent-fakes/git-remote";

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

describe("agent runner on AgentCore (serve mode)", function () {
  this.timeout(60_000);
  let child: ChildProcess | undefined;
  afterEach(() => child?.kill("SIGTERM"));

  it("acknowledges an invocation at once, says HealthyBusy while the task runs, and completes it in the background", async () => {
    const taskId = `task-${randomBytes(4).toString("hex")}`;
    const token = randomBytes(32).toString("base64url");
    const remote = createBareRemote();
    const channel = await startFakeChannel(taskId, token);
    const work = mkdtempSync(path.join(tmpdir(), "agentcore-"));
    const payload = path.join(work, "payload.json");
    writeFileSync(payload, JSON.stringify({ task_id: taskId, repo_url: "https://github.com/acme/app", prompt: "sleep 1\nwrite NOTE.md: from agentcore", channel: { url: channel.url, token } }));
    const port = await freePort();
    const [program, ...args] = nodeEntryCommand(path.resolve(__dirname, "..", "agent", "src", "main"));
    const output: string[] = [];
    child = spawn(program, args, {
      cwd: work,
      env: {
        PATH: process.env.PATH,
        HOME: work,
        AGENT_LISTEN_PORT: String(port),
        AGENT_DRIVER: "command",
        AGENT_COMMAND: JSON.stringify([process.execPath, path.resolve(__dirname, "..", "agent", "scripted-agent.js")]),
        AGENT_HEARTBEAT_SECONDS: "1",
        ...remote.gitEnv,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout!.on("data", (d) => output.push(String(d)));
    child.stderr!.on("data", (d) => output.push(String(d)));
    const base = `http://127.0.0.1:${port}`;
    const ping = async () => ((await (await fetch(`${base}/ping`)).json()) as { status: string }).status;
    for (let i = 0; ; i++) {
      try {
        expect(await ping()).to.equal("Healthy");
        break;
      } catch (err) {
        if (i > 200) throw new Error(`runner did not serve: ${output.join("")} ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    expect((await fetch(`${base}/invocations`, { method: "POST", body: "{}" })).status).to.equal(400);
    const ack = await fetch(`${base}/invocations`, { method: "POST", body: JSON.stringify({ task_id: taskId, payload_url: payload }) });
    expect(ack.status).to.equal(200);
    expect(await ack.json()).to.deep.equal({ status: "accepted", task_id: taskId });
    expect(await ping()).to.equal("HealthyBusy");
    for (let i = 0; channel.task.result === undefined && i < 400; i++) await new Promise((r) => setTimeout(r, 50));
    try {
      expect(channel.task.result, output.join("")).to.include({ status: "COMPLETED", exit_code: 0 });
      expect(remote.git("show", `agent/${taskId}:NOTE.md`)).to.equal("from agentcore\n");
      for (let i = 0; (await ping()) !== "Healthy" && i < 100; i++) await new Promise((r) => setTimeout(r, 50));
      expect(await ping()).to.equal("Healthy");
    } finally {
      await channel.close();
    }
  });
});
