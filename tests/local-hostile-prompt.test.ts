import { createHash, randomBytes } from "node:crypto";
import { existsSync, promises as fs, readFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect } from "chai";
import type { ChildProcess } from "node:child_process";
import { LocalStrategy } from "../runtime/compute/local";
import type { RuntimeConfig } from "../runtime/config";
import { DEFAULT_LIMITS } from "../runtime/limits";
import { startEmbeddedStore, type EmbeddedStore } from "../runtime/local/embedded-store";
import { startLocalChannel } from "./channel-helpers";
import type { TaskRecord } from "../runtime/tasks/record";
import { DynamoEventLog } from "../runtime/tasks/events";
import { DynamoTaskStore } from "../runtime/tasks/store";

describe("local backend: a hostile prompt", function () {
  this.timeout(60_000);
  let store: EmbeddedStore;
  let workDir: string;

  before(async () => {
    store = await startEmbeddedStore({ tablePrefix: `hostile-${randomBytes(3).toString("hex")}` });
    workDir = await fs.mkdtemp(path.join(os.tmpdir(), "hostile-"));
  });
  after(async () => {
    await store?.close();
    await fs.rm(workDir, { recursive: true, force: true });
  });

  it("runs to COMPLETED, never reaches argv, environment or a shell, and creates no file", async () => {
    const marker = `/tmp/x-${randomBytes(6).toString("hex")}`;
    const hostileHead = [
      `it's "quoted" $(touch ${marker}) and \`touch ${marker}\``,
      `; touch ${marker} && echo pwned | sh`,
      `\${IFS}$(touch${"${IFS}"}${marker})\n\r\t\u0000-nul`,
      "",
    ].join("\n");
    const prompt = hostileHead + "y".repeat(1024 * 1024 - Buffer.byteLength(hostileHead));
    expect(Buffer.byteLength(prompt)).to.equal(1024 * 1024);

    const channel = await startLocalChannel(store, workDir, { heartbeatSeconds: 0.2, limits: DEFAULT_LIMITS });
    after(() => channel.close());
    const config: RuntimeConfig = channel.config;
    const tasks = new DynamoTaskStore(config);
    const now = new Date().toISOString();
    const task: TaskRecord = {
      task_id: `hostile-${randomBytes(4).toString("hex")}`,
      user_id: "mallory",
      status: "STARTING",
      repo_url: "https://github.com/acme/app",
      // As the API does: a DynamoDB item is at most 400 KB, so the record keeps a preview; the payload has it all.
      prompt: `${prompt.slice(0, 2000)}…`,
      created_at: now,
      updated_at: now,
    };
    const { payloadUrl } = await channel.prepare(task, {
      task_id: task.task_id,
      repo_url: task.repo_url,
      prompt,
      context: { work_seconds: 0.5 },
    });

    const strategy = new LocalStrategy(config);
    // What the strategy hands to spawn: the argv and environment, as computed...
    const argv = strategy.command();
    const env = strategy.agentEnv({ task, payloadUrl });
    const handed = JSON.stringify({ argv, env });
    const handle = await strategy.startSession({ task, payloadUrl });
    // ...and as the kernel holds them for the running process.
    const child = (strategy as unknown as { children: Map<number, { process: ChildProcess }> }).children.get(handle.pid)!.process;
    expect(child.spawnargs).to.deep.equal(argv);
    const procCmdline = readFileSync(`/proc/${handle.pid}/cmdline`, "latin1");
    const procEnviron = readFileSync(`/proc/${handle.pid}/environ`, "latin1");

    for (const fragment of ["$(touch", "`touch", "pwned", "quoted", marker, "yyyyyyyy"]) {
      expect(handed, fragment).to.not.contain(fragment);
      expect(procCmdline, fragment).to.not.contain(fragment);
      expect(procEnviron, fragment).to.not.contain(fragment);
    }
    expect(Buffer.byteLength(handed)).to.be.lessThan(8192);

    let finished: TaskRecord | undefined;
    for (const until = Date.now() + 30_000; Date.now() < until; ) {
      finished = await tasks.get(task.task_id);
      if (finished?.status === "COMPLETED" || finished?.status === "FAILED") break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(finished?.status, finished?.error_message).to.equal("COMPLETED");
    // The agent read the whole prompt, byte for byte: its digest matches.
    const digest = createHash("sha256").update(prompt, "utf8").digest("hex");
    const messages = (await new DynamoEventLog(config).list(task.task_id, { limit: 100 })).items.map((e) => e.message);
    expect(messages).to.include(`prompt sha256 ${digest}`);
    expect(existsSync(marker)).to.equal(false);

    // The process ends too, with exit 0, before after() removes its run folder.
    let exited: Awaited<ReturnType<LocalStrategy["pollSession"]>> | undefined;
    for (const until = Date.now() + 20_000; Date.now() < until; ) {
      exited = await strategy.pollSession(handle);
      if (exited.state !== "RUNNING") break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(exited).to.include({ state: "EXITED", exitCode: 0 });
  });
});
