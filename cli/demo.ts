/**
 * `agent-compute demo` (npm start): the project's main job on a laptop, end to end. A local git repository stands
 * in for a GitHub repository; the local platform (embedded DynamoDB, task API with the agent channel, orchestrator,
 * local backend) runs the real agent runner on one task; the runner clones, lets the coding agent edit, commits and
 * pushes a branch; the demo prints that branch's commit and diff stat. The coding agent is the scripted stand-in
 * (no account, no model), or Claude Code on Bedrock with `--driver claude` and your AWS credentials.
 */
import * as path from "node:path";
import { runnerCommand } from "../runtime/compute/local";
import { startLocalPlatform } from "../runtime/local/platform";
import { ApiClient, LOCAL_STATE_DIR } from "./client";
import { createLocalRemote } from "./demo-repo";
import { watchTask, type TaskView } from "./watch";

export const SCRIPTED_AGENT = path.resolve(__dirname, "..", "agent", "scripted-agent.js");

/** The variables Claude Code needs to reach Bedrock with the caller's own AWS credentials. */
const AWS_PASS = ["AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"];

export interface DemoOptions {
  out: (text: string) => void;
  tty: boolean;
  driver?: "scripted" | "claude";
  model?: string;
  stateDir?: string;
}

const SCRIPTED_PROMPT = [
  "Add a short contributing guide to the repository.",
  "write CONTRIBUTING.md: # Contributing",
  "write CONTRIBUTING.md: ",
  "write CONTRIBUTING.md: Open a pull request against main; an agent-compute task wrote this file.",
  "say done",
].join("\n");

const CLAUDE_PROMPT = "Add a short CONTRIBUTING.md to the repository saying that changes arrive as pull requests against main.";

export async function runDemo(options: DemoOptions): Promise<TaskView> {
  const { out } = options;
  const stateDir = options.stateDir ?? LOCAL_STATE_DIR;
  const driver = options.driver ?? "scripted";
  const remote = createLocalRemote(path.resolve(stateDir, "demo-remote"), "agent-compute", "demo-repo", {
    "README.md": "# demo-repo\n\nA repository the agent-compute demo works on.\n",
  });
  out(`agent-compute demo: a local git repository stands in for ${remote.repoUrl} (${remote.bare})\n`);
  out("starting the local platform (embedded DynamoDB, task API + agent channel, orchestrator, local backend)\n");
  const runnerEnv: Record<string, string> = { ...remote.gitEnv, AGENT_PULL_REQUESTS: "off" };
  if (driver === "claude") {
    Object.assign(runnerEnv, { AGENT_DRIVER: "claude" });
    for (const k of AWS_PASS) if (process.env[k]) runnerEnv[k] = process.env[k]!;
  } else {
    Object.assign(runnerEnv, { AGENT_DRIVER: "command", AGENT_COMMAND: JSON.stringify([process.execPath, SCRIPTED_AGENT]) });
  }
  const platform = await startLocalPlatform({ stateDir, agentCommand: runnerCommand(), agentEnv: runnerEnv, log: (line) => out(`  [platform] ${line}\n`) });
  try {
    const api = new ApiClient({ url: platform.url });
    const { task } = await api.request<{ task: TaskView }>("POST", "/tasks", {
      body: { repo_url: remote.repoUrl, prompt: driver === "claude" ? CLAUDE_PROMPT : SCRIPTED_PROMPT, backend: "local", max_turns: 10, ...(options.model ? { model: options.model } : {}) },
    });
    out(`submitted task ${task.task_id} (agent runner, ${driver === "claude" ? "Claude Code on Bedrock" : "scripted agent"})\n`);
    const final = await watchTask(api, task.task_id, { intervalMs: 500, write: out, tty: options.tty, timeoutMs: driver === "claude" ? 900_000 : 120_000 });
    if (final.status === "COMPLETED") {
      const branch = `agent/${task.task_id}`;
      out(`\ndemo COMPLETED: branch ${branch} of ${remote.bare}\n`);
      out(remote.git("log", "-1", "--format=commit %h  %s%n  by %an", branch));
      out(remote.git("diff", "--stat", `main...${branch}`));
    } else {
      out(`demo did not complete: ${final.status}\n`);
    }
    return final;
  } finally {
    out("shutting down the local platform\n");
    await platform.close();
  }
}
