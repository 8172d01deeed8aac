/**
 * The real agent runner on the real local platform: the task API, the agent channel, the orchestrator and the
 * local backend run it as a child process, exactly as `npm start` does. A bare repository stands in for GitHub's
 * git, a fake GitHub records the pull request, the operator's token comes from the local credentials provider.
 */
import { expect } from "chai";
import { existsSync, mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { ApiClient } from "../cli/client";
import { runDemo, SCRIPTED_AGENT } from "../cli/demo";
import { runnerCommand } from "../runtime/compute/local";
import { localCredentialsProvider } from "../runtime/credentials/local";
import { startLocalPlatform, type LocalPlatform } from "../runtime/local/platform";
import { createBareRemote, type BareRemote } from "./agent-fakes/git-remote";
import { startFakeGitHub, type FakeGitHub } from "./agent-fakes/github-server";

const TOKEN = "ghp_localoperatortoken0123456789abcdef";

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, withinMs = 30_000): Promise<T> {
  const until = Date.now() + withinMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("agent runner on the local platform", function () {
  this.timeout(90_000);
  let platform: LocalPlatform;
  let remote: BareRemote;
  let github: FakeGitHub;
  let api: ApiClient;
  let stateDir: string;

  before(async () => {
    remote = createBareRemote();
    github = await startFakeGitHub(TOKEN);
    stateDir = mkdtempSync(path.join(tmpdir(), "agent-local-"));
    platform = await startLocalPlatform({
      stateDir,
      agentCommand: runnerCommand(),
      agentEnv: { ...remote.gitEnv, AGENT_DRIVER: "command", AGENT_COMMAND: JSON.stringify([process.execPath, SCRIPTED_AGENT]), GITHUB_API_URL: github.url },
      repoCredentials: localCredentialsProvider({ AGENT_COMPUTE_GIT_TOKEN: TOKEN }),
    });
    api = new ApiClient({ url: platform.url });
  });
  after(async () => {
    await platform?.close();
    await github?.close();
  });

  const submit = async (prompt: string) =>
    (await api.request<{ task: { task_id: string } }>("POST", "/tasks", { body: { repo_url: "https://github.com/acme/app", prompt, backend: "local" } })).task.task_id;
  const get = async (id: string) => (await api.request<{ task: any }>("GET", `/tasks/${id}`)).task;

  it("a submitted task ends COMPLETED with its branch pushed, the pull request opened and pr_url on the record; the token is nowhere", async () => {
    const id = await submit("Add a changelog\nwrite CHANGELOG.md: - the first entry");
    const task = await waitFor("COMPLETED", async () => {
      const t = await get(id);
      return ["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"].includes(t.status) ? t : undefined;
    });
    const runDir = path.join(stateDir, "runs", id);
    const log = readFileSync(path.join(runDir, "agent.log"), "utf8");
    expect(task.status, `${task.error_message}\n${log}`).to.equal("COMPLETED");
    expect(task.pr_url).to.equal("https://github.com/acme/app/pull/1");
    expect(remote.git("show", `agent/${id}:CHANGELOG.md`)).to.equal("- the first entry\n");
    expect(github.pulls[0]).to.include({ head: `agent/${id}`, base: "main", title: "Add a changelog" });
    const events = await api.request<{ events: unknown[] }>("GET", `/tasks/${id}/events`);
    expect(JSON.stringify(events)).to.contain("opened pull request").and.not.contain(TOKEN);
    expect(log).to.contain("task COMPLETED").and.not.contain(TOKEN);
    expect(readFileSync(path.join(runDir, "repo", ".git", "config"), "utf8")).not.to.contain(TOKEN);
  });

  it("a cancel through the API stops the runner, the agent and the process the agent started, within seconds", async () => {
    const id = await submit("spawn-sleeper\nsleep 120\nwrite late.txt: too late");
    const pidsFile = path.join(stateDir, "runs", id, "scratch", "pids.json");
    await waitFor("the agent's pids", async () => (existsSync(pidsFile) ? true : undefined));
    const pids: number[] = JSON.parse(readFileSync(pidsFile, "utf8"));
    for (const pid of pids) expect(readFileSync(`/proc/${pid}/environ`, "latin1") + readFileSync(`/proc/${pid}/cmdline`, "latin1")).not.to.contain(TOKEN);
    await api.request("POST", `/tasks/${id}/cancel`, { body: {} });
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    await waitFor("the agent's processes to end", async () => (pids.some(alive) ? undefined : true), 15_000);
    expect((await get(id)).status).to.equal("CANCELLED");
    expect(() => remote.git("rev-parse", "--quiet", "--verify", `agent/${id}`)).to.throw();
  });
});

describe("npm start (the demo)", function () {
  this.timeout(90_000);
  it("ends with a branch and a commit on the local repository, and prints its diff stat", async () => {
    const stateDir = mkdtempSync(path.join(tmpdir(), "agent-demo-"));
    let printed = "";
    const task = await runDemo({ out: (t) => (printed += t), tty: false, stateDir });
    expect(task.status, printed).to.equal("COMPLETED");
    expect(printed).to.match(/CONTRIBUTING\.md \| 3 \+\+\+/).and.to.contain("1 file changed, 3 insertions(+)");
    expect(printed).to.contain(`agent/${task.task_id}`);
    expect(readdirSync(path.join(stateDir, "demo-remote", "github.com", "agent-compute"))).to.deep.equal(["demo-repo"]);
  });
});
