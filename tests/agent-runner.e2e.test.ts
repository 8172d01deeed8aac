/**
 * The agent runner end to end, offline: a local bare repository as the remote (through git's url rewrite), a fake
 * GitHub that records pull requests, a fake agent channel, and the scripted `command` agent editing files. Each
 * failure path ends with its own reason and exit code; a cancel stops the agent's process tree mid-run; the
 * repository token appears in no event, log line, git argv or environment, remote URL or agent process.
 */
import { expect } from "chai";
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { CommandDriver } from "../agent/src/drivers/command";
import { EXIT } from "../agent/src/outcome";
import { runTask, type RunnerSettings } from "../agent/src/runner";
import { startFakeChannel, type FakeChannel } from "./agent-fakes/channel-server";
import { createBareRemote, type BareRemote } from "./agent-fakes/git-remote";
import { startGitHttpServer } from "./agent-fakes/git-http-server";
import { startFakeGitHub, type FakeGitHub } from "./agent-fakes/github-server";

const SCRIPTED_AGENT = path.resolve(__dirname, "..", "agent", "scripted-agent.js");
const REAL_GIT = execFileSync("sh", ["-c", "command -v git"], { encoding: "utf8" }).trim();

interface Rig {
  taskId: string;
  channelToken: string;
  repoToken: string;
  remote: BareRemote;
  channel: FakeChannel;
  github: FakeGitHub;
  workDir: string;
  gitLog: string;
  logs: string[];
  env: NodeJS.ProcessEnv;
  run(prompt: string, extra?: Record<string, unknown>, settings?: Partial<RunnerSettings>): Promise<number>;
}

/** A `git` first on PATH that records each call's argv and environment, then runs the real git. */
function gitSpy(dir: string, logFile: string): string {
  const bin = path.join(dir, "bin");
  execFileSync("mkdir", ["-p", bin]);
  writeFileSync(path.join(bin, "git"), `#!/bin/sh\n{ echo "ARGV $*"; env; echo; } >> '${logFile}'\nexec '${REAL_GIT}' "$@"\n`);
  chmodSync(path.join(bin, "git"), 0o755);
  return bin;
}

async function rig(options: { credentials?: boolean } = {}): Promise<Rig> {
  const taskId = `task-${randomBytes(4).toString("hex")}`;
  const channelToken = randomBytes(32).toString("base64url");
  const repoToken = `ghs_${randomBytes(18).toString("hex")}`;
  const remote = createBareRemote();
  const channel = await startFakeChannel(taskId, channelToken, options.credentials === false ? {} : { credentials: { username: "x-access-token", token: repoToken } });
  const github = await startFakeGitHub(repoToken);
  const workDir = mkdtempSync(path.join(tmpdir(), "agent-run-"));
  const gitLog = path.join(workDir, "..", `${path.basename(workDir)}-git.log`);
  const bin = gitSpy(mkdtempSync(path.join(tmpdir(), "agent-spy-")), gitLog);
  const env: NodeJS.ProcessEnv = { PATH: `${bin}:${process.env.PATH}`, HOME: workDir, ...remote.gitEnv };
  const logs: string[] = [];
  const r: Rig = {
    taskId,
    channelToken,
    repoToken,
    remote,
    channel,
    github,
    workDir,
    gitLog,
    logs,
    env,
    async run(prompt, extra = {}, settings = {}) {
      const payloadFile = path.join(workDir, "payload.json");
      writeFileSync(
        payloadFile,
        JSON.stringify({ task_id: taskId, repo_url: "https://github.com/acme/app", prompt, ...extra, channel: { url: channel.url, token: channelToken } }),
        { mode: 0o600 },
      );
      return runTask(
        { taskId, payloadUrl: payloadFile },
        {
          workDir,
          driver: new CommandDriver({ argv: [process.execPath, SCRIPTED_AGENT], runnerEnv: env, stopGraceMs: 1000 }),
          heartbeatMs: 100,
          pullRequests: true,
          githubApiUrl: github.url,
          identity: { name: "agent-compute", email: "agent@agent-compute.invalid" },
          events: { progressEveryMs: 0 },
          ...settings,
        },
        { env, log: (line) => logs.push(line) },
      );
    },
  };
  return r;
}

function everythingSaid(r: Rig): string {
  return [
    JSON.stringify(r.channel.task.events),
    JSON.stringify(r.channel.task.result ?? {}),
    r.logs.join("\n"),
    existsSync(r.gitLog) ? readFileSync(r.gitLog, "utf8") : "",
    JSON.stringify(r.github.pulls),
  ].join("\n");
}

describe("agent runner end to end (bare repo, fake GitHub, scripted command agent)", function () {
  this.timeout(30_000);
  const rigs: Rig[] = [];
  const make = async (o?: { credentials?: boolean }) => {
    const r = await rig(o);
    rigs.push(r);
    return r;
  };
  afterEach(async () => {
    for (const r of rigs.splice(0)) {
      await r.channel.close();
      await r.github.close();
    }
  });

  it("pushes agent/<task-id> with the agent's commit, opens the pull request and reports pr_url, turns and cost", async () => {
    const r = await make();
    const code = await r.run("Add a greeting\nwrite docs/hello.md: hello from the agent\ncost 0.25", { max_budget_usd: 1 });
    expect(code, r.logs.join("\n")).to.equal(EXIT.OK);
    const branch = `agent/${r.taskId}`;
    expect(r.remote.git("show", `${branch}:docs/hello.md`)).to.equal("hello from the agent\n");
    expect(r.remote.git("log", "--format=%s%n%b", "-1", branch)).to.contain("Add a greeting").and.contain(r.taskId);
    expect(r.remote.git("rev-parse", `${branch}~1`)).to.equal(r.remote.git("rev-parse", "main"));
    expect(r.github.pulls).to.have.length(1);
    expect(r.github.pulls[0]).to.include({ head: branch, base: "main", title: "Add a greeting" });
    expect(r.github.pulls[0].body).to.contain("> Add a greeting").and.contain("docs/hello.md");
    expect(r.channel.task.status).to.equal("COMPLETED");
    expect(r.channel.task.result).to.include({ status: "COMPLETED", exit_code: 0, pr_url: "https://github.com/acme/app/pull/1", cost_usd: 0.25, turns: 1 });
    expect(r.channel.task.result!.summary).to.contain("docs/hello.md");
    expect(r.channel.task.heartbeats).to.be.greaterThan(0);
    expect(r.channel.task.events.map((e) => e.message).join("\n")).to.contain("edited docs/hello.md").and.contain("opened pull request");
  });

  it("keeps the repository token out of events, logs, git argv and environment, the clone's remote URL and the disk", async () => {
    const r = await make();
    expect(await r.run("write a.txt: x")).to.equal(EXIT.OK);
    const said = everythingSaid(r);
    expect(said).to.match(/ARGV .* clone --no-tags/).and.to.match(/ARGV .* push --porcelain/); // the spy saw git clone and push
    expect(said).not.to.contain(r.repoToken);
    expect(said).not.to.contain(r.channelToken);
    expect(readFileSync(path.join(r.workDir, "repo", ".git", "config"), "utf8")).not.to.contain(r.repoToken);
    // The private credential folder is removed at the end of the run.
    expect(readdirSync(tmpdir()).filter((n) => n.startsWith("agent-git-")).map((n) => readdirSync(path.join(tmpdir(), n))).flat()).not.to.include("credential");
  });

  it("over HTTP, git gets the token from the credential helper for clone and push, and is refused without it", async () => {
    const r = await make();
    const server = await startGitHttpServer(path.join(r.remote.dir, "github.com"), "x-access-token", r.repoToken);
    try {
      // https://github.com/ now leads to the authenticating smart-HTTP server instead of the folder.
      r.env.GIT_CONFIG_KEY_0 = `url.${server.url}/.insteadOf`;
      expect(await r.run("write a.txt: over http"), r.logs.join("\n")).to.equal(EXIT.OK);
      expect(r.remote.git("show", `agent/${r.taskId}:a.txt`)).to.equal("over http\n");
      expect(server.authenticated.length).to.be.greaterThan(1);
      expect(everythingSaid(r)).not.to.contain(r.repoToken);
      expect(readFileSync(path.join(r.workDir, "repo", ".git", "config"), "utf8")).to.contain("url = https://github.com/acme/app");

      r.channel.task.status = "STARTING";
      r.channel.credentials = undefined;
      expect(await r.run("write a.txt: again")).to.equal(EXIT.CLONE);
      expect(r.channel.task.result!.error_message).to.match(/^clone failed: .*(Authentication failed|could not read Username)/);
    } finally {
      await server.close();
    }
  });

  it("updates the open pull request when the branch already has one", async () => {
    const r = await make();
    expect(await r.run("First pass\nwrite a.txt: one", { branch: "feature/x" })).to.equal(EXIT.OK);
    expect(await (async () => {
      r.channel.task.status = "STARTING";
      return r.run("Second pass\nwrite a.txt: two", { branch: "feature/x" });
    })()).to.equal(EXIT.OK);
    expect(r.github.pulls).to.have.length(1);
    expect(r.github.pulls[0].title).to.equal("Second pass");
    expect(r.github.calls.filter((c) => c.method === "PATCH")).to.have.length(1);
    expect(r.remote.git("show", "feature/x:a.txt")).to.equal("one\ntwo\n");
  });

  it("a run that changes nothing ends COMPLETED with no push and no pull request, and says so", async () => {
    const r = await make();
    expect(await r.run("say nothing to do here")).to.equal(EXIT.OK);
    expect(r.channel.task.result).to.include({ status: "COMPLETED", exit_code: 0 });
    expect(r.channel.task.result!.summary).to.match(/^No changes/);
    expect(r.channel.task.result).not.to.have.property("pr_url");
    expect(r.github.calls).to.have.length(0);
    expect(() => r.remote.git("rev-parse", "--quiet", "--verify", `agent/${r.taskId}`)).to.throw();
  });

  // Each failure path: how it is provoked, its exit code, and the start of its reason.
  const failures: { name: string; prompt: string; extra?: Record<string, unknown>; arrange?: (r: Rig) => void; code: number; reason: RegExp }[] = [
    {
      name: "clone failed",
      prompt: "write a.txt: x",
      extra: { repo_url: "https://github.com/acme/missing" },
      code: EXIT.CLONE,
      reason: /^clone failed: .*(does not appear to be a git repository|Could not read from remote repository)/i,
    },
    { name: "agent failed", prompt: "write a.txt: x\nexit 7", code: EXIT.AGENT, reason: /^agent failed: .* exited with code 7: scripted agent exiting with 7/ },
    { name: "budget exceeded", prompt: "write a.txt: x\ncost 3.5", extra: { max_budget_usd: 1 }, code: EXIT.BUDGET, reason: /^budget exceeded: the agent reported \$3\.5000, over max_budget_usd \$1/ },
    { name: "budget exceeded (said by the agent)", prompt: "outcome budget_exceeded", code: EXIT.BUDGET, reason: /^budget exceeded: the agent stopped at its budget/ },
    { name: "turn limit reached", prompt: "outcome turns_exceeded", code: EXIT.TURNS, reason: /^turn limit reached/ },
    {
      name: "push rejected",
      prompt: "write a.txt: x",
      arrange: (r) => {
        const hook = path.join(r.remote.bare, "hooks", "pre-receive");
        writeFileSync(hook, "#!/bin/sh\necho 'protected: pushes are refused' >&2\nexit 1\n");
        chmodSync(hook, 0o755);
      },
      code: EXIT.PUSH,
      reason: /^push rejected: .*(pre-receive hook declined|protected: pushes are refused)/,
    },
    { name: "pull request failed", prompt: "write a.txt: x", arrange: (r) => (r.github.failCreateWith = 422), code: EXIT.PULL_REQUEST, reason: /^pull request failed: branch agent\/.* was pushed, but POST .* HTTP 422: Validation Failed/ },
    { name: "credentials unavailable", prompt: "write a.txt: x", arrange: (r) => (r.channel.failCredentials = 3), code: EXIT.CREDENTIALS, reason: /^repository credentials unavailable: GET credentials: HTTP 500/ },
  ];
  for (const f of failures) {
    it(`${f.name}: FAILED with exit code ${f.code} and its own reason`, async () => {
      const r = await make();
      f.arrange?.(r);
      const code = await r.run(f.prompt, f.extra);
      expect(code, r.logs.join("\n")).to.equal(f.code);
      expect(r.channel.task.result).to.include({ status: "FAILED", exit_code: f.code });
      expect(r.channel.task.result!.error_message).to.match(f.reason);
      expect(everythingSaid(r)).not.to.contain(r.repoToken);
    });
  }

  it("reports cost and turns on a budget failure", async () => {
    const r = await make();
    await r.run("write a.txt: x\ncost 3.5", { max_budget_usd: 1 });
    expect(r.channel.task.result).to.include({ cost_usd: 3.5, turns: 1 });
  });

  it("with no repository credentials configured it clones and pushes anonymously and opens no pull request", async () => {
    const r = await make({ credentials: false });
    expect(await r.run("write a.txt: x")).to.equal(EXIT.OK);
    expect(r.remote.git("show", `agent/${r.taskId}:a.txt`)).to.equal("x\n");
    expect(r.channel.task.result!.summary).to.contain("No repository credentials, so no pull request");
    expect(r.github.calls).to.have.length(0);
  });

  it("a cancel seen at a heartbeat stops the agent and the processes it started, and writes nothing", async () => {
    const r = await make();
    const running = r.run("spawn-sleeper\nsleep 60\nwrite late.txt: too late");
    const pidsFile = path.join(r.workDir, "scratch", "pids.json");
    const t0 = Date.now();
    while (!existsSync(pidsFile) && Date.now() - t0 < 10_000) await new Promise((res) => setTimeout(res, 20));
    const pids: number[] = JSON.parse(readFileSync(pidsFile, "utf8"));
    expect(pids).to.have.length(2);
    // While the agent runs, neither token is in its argv or environment (the process listing).
    for (const pid of pids) {
      const listing = readFileSync(`/proc/${pid}/cmdline`, "latin1") + readFileSync(`/proc/${pid}/environ`, "latin1");
      expect(listing).not.to.contain(r.repoToken);
      expect(listing).not.to.contain(r.channelToken);
    }
    r.channel.task.status = "CANCELLED";
    expect(await running).to.equal(EXIT.OK);
    const alive = pids.filter((pid) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    });
    expect(alive).to.deep.equal([]);
    expect(r.channel.task.result).to.equal(undefined);
    expect(existsSync(path.join(r.workDir, "repo", "late.txt"))).to.equal(false);
    expect(() => r.remote.git("rev-parse", "--quiet", "--verify", `agent/${r.taskId}`)).to.throw();
  });

  it("a task already ended when the runner starts is left alone (exit 0, nothing cloned)", async () => {
    const r = await make();
    r.channel.task.status = "CANCELLED";
    expect(await r.run("write a.txt: x")).to.equal(EXIT.OK);
    expect(existsSync(path.join(r.workDir, "repo"))).to.equal(false);
  });

  it("a payload for another task is refused before anything is reported (exit 2)", async () => {
    const r = await make();
    writeFileSync(path.join(r.workDir, "other.json"), JSON.stringify({ task_id: "someone-else", repo_url: "https://github.com/acme/app", prompt: "x", channel: { url: r.channel.url, token: r.channelToken } }));
    const code = await runTask(
      { taskId: r.taskId, payloadUrl: path.join(r.workDir, "other.json") },
      { workDir: r.workDir, driver: new CommandDriver({ argv: [process.execPath, SCRIPTED_AGENT], runnerEnv: r.env }), heartbeatMs: 100, pullRequests: true, identity: { name: "a", email: "a@b.c" } },
      { env: r.env, log: (l) => r.logs.push(l) },
    );
    expect(code).to.equal(EXIT.SETUP);
    expect(r.channel.requests).to.have.length(0);
    expect(r.logs.join("\n")).to.contain('payload is for task "someone-else"');
  });
});
