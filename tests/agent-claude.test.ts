/**
 * The `claude` driver. Its decisions (how a result message ends the run, what progress says, what environment
 * Claude Code gets) are tested directly. Then the real Claude Code loop runs offline: the SDK (installed by
 * `npm ci --prefix agent`, as the image does) is pointed at a scripted Anthropic Messages API on 127.0.0.1, makes
 * one file edit, and the runner pushes it and opens the pull request.
 */
import { expect } from "chai";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { ClaudeDriver, outcomeOfResult, progressOf, type SdkMessage } from "../agent/src/drivers/claude";
import { EXIT } from "../agent/src/outcome";
import { runTask } from "../agent/src/runner";
import { startFakeAnthropic } from "./agent-fakes/anthropic-server";
import { startFakeChannel } from "./agent-fakes/channel-server";
import { createBareRemote } from "./agent-fakes/git-remote";
import { startFakeGitHub } from "./agent-fakes/github-server";

describe("claude driver: decisions", () => {
  const cases: { result: SdkMessage; kind: string }[] = [
    { result: { type: "result", subtype: "success", result: "did it", total_cost_usd: 0.5, num_turns: 3 }, kind: "done" },
    { result: { type: "result", subtype: "success", is_error: true, result: "API Error: 500" }, kind: "failed" },
    { result: { type: "result", subtype: "error_max_turns", num_turns: 10 }, kind: "turns_exceeded" },
    { result: { type: "result", subtype: "error_max_budget_usd", total_cost_usd: 2.01 }, kind: "budget_exceeded" },
    { result: { type: "result", subtype: "error_during_execution", errors: ["boom"] }, kind: "failed" },
  ];
  for (const c of cases) {
    it(`a ${c.result.subtype}${c.result.is_error ? " (is_error)" : ""} result ends the run as ${c.kind}, keeping cost and turns`, () => {
      const o = outcomeOfResult(c.result);
      expect(o.kind).to.equal(c.kind);
      if (c.result.total_cost_usd !== undefined) expect(o.costUsd).to.equal(c.result.total_cost_usd);
      if (c.result.num_turns !== undefined) expect(o.turns).to.equal(c.result.num_turns);
    });
  }

  it("progress names the tools an assistant message calls, else its first line of text", () => {
    expect(progressOf({ type: "assistant", message: { content: [{ type: "tool_use", name: "Edit", input: { file_path: "/r/a.ts" } }, { type: "tool_use", name: "Bash", input: {} }] } })).to.equal("tool: Edit /r/a.ts, Bash");
    expect(progressOf({ type: "assistant", message: { content: [{ type: "text", text: "Looking at the tests\nmore" }] } })).to.equal("Looking at the tests");
    expect(progressOf({ type: "user" })).to.equal(undefined);
  });

  it("Claude Code gets Bedrock and the AWS credential chain, the model, and no token or unrelated variable", () => {
    const driver = new ClaudeDriver({
      runnerEnv: { PATH: "/bin", HOME: "/h", AWS_REGION: "us-east-2", AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: "/v2/creds", TASK_ID: "t", AGENT_PAYLOAD_URL: "https://x/p?sig", GITHUB_TOKEN: "ghs_secret", ANTHROPIC_API_KEY: "sk" },
    });
    const env = driver.childEnv("us.anthropic.claude-sonnet-4-5-20250929-v1:0");
    expect(env).to.include({ CLAUDE_CODE_USE_BEDROCK: "1", AWS_REGION: "us-east-2", AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: "/v2/creds", ANTHROPIC_MODEL: "us.anthropic.claude-sonnet-4-5-20250929-v1:0", CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1" });
    expect(env).not.to.have.any.keys("TASK_ID", "AGENT_PAYLOAD_URL", "GITHUB_TOKEN", "ANTHROPIC_API_KEY");
  });

  it("on the EC2 fleet: Claude Code gets the host-refreshed credential_process config and, for a task naming no model, the stack's model", () => {
    // The container's environment as the fleet's task document sets it (runtime/fleet/document.ts).
    const runnerEnv = {
      PATH: "/bin",
      HOME: "/h",
      TASK_ID: "t",
      AGENT_PAYLOAD_URL: "/agent/payload.json",
      AWS_REGION: "eu-west-3",
      AWS_DEFAULT_REGION: "eu-west-3",
      ANTHROPIC_MODEL: "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
      AWS_CONFIG_FILE: "/agent/aws/config",
      AWS_SDK_LOAD_CONFIG: "1",
    };
    const env = new ClaudeDriver({ runnerEnv }).childEnv(undefined);
    expect(env).to.include({ CLAUDE_CODE_USE_BEDROCK: "1", AWS_CONFIG_FILE: "/agent/aws/config", AWS_SDK_LOAD_CONFIG: "1", AWS_REGION: "eu-west-3", ANTHROPIC_MODEL: runnerEnv.ANTHROPIC_MODEL });
    expect(env).not.to.have.any.keys("TASK_ID", "AGENT_PAYLOAD_URL");
    expect(new ClaudeDriver({ runnerEnv }).childEnv("anthropic.claude-3-5-haiku-20241022-v1:0").ANTHROPIC_MODEL, "the task's own model first").to.equal("anthropic.claude-3-5-haiku-20241022-v1:0");
  });

  it("passes max_turns, max_budget_usd, the model and the prompt to the SDK; a stream that throws is an agent failure", async () => {
    let seen: any;
    const driver = new ClaudeDriver({
      runnerEnv: {},
      loadQuery: async () => (args) => {
        seen = args;
        return (async function* () {
          yield { type: "assistant", message: { content: [{ type: "text", text: "working" }] } };
          throw new Error("Claude Code process exited with code 1");
        })();
      },
    });
    const lines: string[] = [];
    const o = await driver.run({ prompt: "fix it", cwd: "/r", scratchDir: "/s", model: "m", maxTurns: 7, maxBudgetUsd: 1.5, signal: new AbortController().signal, progress: (l) => lines.push(l), log: () => undefined });
    expect(seen.prompt).to.equal("fix it");
    expect(seen.options).to.include({ cwd: "/r", model: "m", maxTurns: 7, maxBudgetUsd: 1.5, permissionMode: "dontAsk" });
    expect(o).to.deep.include({ kind: "failed" });
    expect(o.detail).to.contain("exited with code 1");
    expect(lines).to.deep.equal(["working"]);
  });

  it("an SDK that is not installed is an agent failure that says what to install", async () => {
    const driver = new ClaudeDriver({ runnerEnv: { AGENT_CLAUDE_SDK: "/nonexistent/sdk.mjs" } });
    const o = await driver.run({ prompt: "x", cwd: "/r", scratchDir: "/s", signal: new AbortController().signal, progress: () => undefined, log: () => undefined });
    expect(o.kind).to.equal("failed");
    expect(o.detail).to.match(/cannot load @anthropic-ai\/claude-agent-sdk \(install it in the agent image\)/);
  });
});

const SDK_DIR = path.resolve(__dirname, "..", "agent", "node_modules", "@anthropic-ai", "claude-agent-sdk");

describe("claude driver: the real Claude Code loop, offline against a scripted Messages API", function () {
  this.timeout(120_000);
  before(function () {
    if (!existsSync(path.join(SDK_DIR, "sdk.mjs"))) {
      // The SDK is the image's dependency, not the project's (its licence is not open source): `npm run test:claude` installs it.
      console.log("    (skipped: run `npm run test:claude`, which installs the SDK into agent/node_modules first)");
      this.skip();
    }
  });

  it("Claude Code writes one file through its Write tool; the runner commits, pushes and opens the pull request with its cost and turns", async () => {
    const taskId = `task-${randomBytes(4).toString("hex")}`;
    const channelToken = randomBytes(32).toString("base64url");
    const repoToken = `ghs_${randomBytes(18).toString("hex")}`;
    const remote = createBareRemote();
    const channel = await startFakeChannel(taskId, channelToken, { credentials: { username: "x-access-token", token: repoToken } });
    const github = await startFakeGitHub(repoToken);
    const workDir = mkdtempSync(path.join(tmpdir(), "agent-claude-"));
    const anthropic = await startFakeAnthropic({ filePath: path.join(workDir, "repo", "GREETING.md"), content: "Hello from Claude Code.\n" });
    try {
      const env: NodeJS.ProcessEnv = {
        PATH: process.env.PATH,
        HOME: mkdtempSync(path.join(tmpdir(), "agent-claude-home-")),
        ...remote.gitEnv,
        AGENT_CLAUDE_PROVIDER: "anthropic",
        ANTHROPIC_BASE_URL: anthropic.url,
        ANTHROPIC_API_KEY: "sk-ant-offline-test",
      };
      const payloadFile = path.join(workDir, "payload.json");
      writeFileSync(payloadFile, JSON.stringify({ task_id: taskId, repo_url: "https://github.com/acme/app", prompt: "Add a greeting file.", model: "claude-sonnet-4-5", max_turns: 4, max_budget_usd: 1, channel: { url: channel.url, token: channelToken } }));
      const logs: string[] = [];
      const code = await runTask(
        { taskId, payloadUrl: payloadFile },
        { workDir, driver: new ClaudeDriver({ runnerEnv: env }), heartbeatMs: 500, pullRequests: true, githubApiUrl: github.url, identity: { name: "agent-compute", email: "a@b.invalid" }, events: { progressEveryMs: 0 } },
        { env, log: (l) => logs.push(l) },
      );
      expect(code, logs.join("\n")).to.equal(EXIT.OK);
      expect(remote.git("show", `agent/${taskId}:GREETING.md`)).to.equal("Hello from Claude Code.\n");
      expect(github.pulls[0]).to.include({ head: `agent/${taskId}`, base: "main", title: "Add a greeting file." });
      expect(channel.task.result).to.include({ status: "COMPLETED", pr_url: "https://github.com/acme/app/pull/1", turns: 2 });
      expect(channel.task.result!.cost_usd).to.be.greaterThan(0);
      // The loop really ran through the scripted API: the model saw the prompt and the tool result came back.
      const bodies = anthropic.requests.filter((r) => r.path === "/v1/messages").map((r) => JSON.stringify(r.body));
      expect(bodies.some((b) => b.includes("Add a greeting file."))).to.equal(true);
      expect(bodies.some((b) => b.includes("tool_result"))).to.equal(true);
      expect(JSON.stringify(channel.task.events)).to.contain("tool: Write");
      // Neither token reached Claude Code's requests.
      expect(JSON.stringify(anthropic.requests)).not.to.contain(repoToken).and.not.to.contain(channelToken);
    } finally {
      await Promise.all([anthropic.close(), channel.close(), github.close()]);
    }
  });
});
