/**
 * The agent channel over real DynamoDB tables (moto): every route, and every way an untrusted agent might try to
 * reach beyond its own task. Each refusal is checked to have changed nothing.
 */
import { expect } from "chai";
import { handleApiRequest } from "../runtime/api/router";
import type { ApiResponse } from "../runtime/api/http";
import { prepareAgentChannel } from "../runtime/channel/dispatch";
import { AGENT_REPORT_RATE, takeToken } from "../runtime/channel/rate-limit";
import { AGENT_TOKEN_PATTERN, newAgentToken } from "../runtime/channel/token";
import type { RuntimeConfig } from "../runtime/config";
import { createRuntime, type Runtime } from "../runtime/runtime";
import type { TaskRecord } from "../runtime/tasks/record";
import { createTables, createTask, FakeClock, testConfig } from "./orchestrator-fixtures";

const noDispatch = { dispatch: async () => undefined };

describe("agent channel: the token bucket (pure)", () => {
  const t0 = 1_000_000;
  const cases: [string, { tokens?: number; atMs?: number }, number, boolean, number?][] = [
    ["a task that never reported has a full bucket", {}, t0, true, AGENT_REPORT_RATE.burst - 1],
    ["an empty bucket refuses at once", { tokens: 0.2, atMs: t0 }, t0, false],
    ["refills at perMinute (60/min: one a second)", { tokens: 0, atMs: t0 }, t0 + 1000, true, 0],
    ["never above the burst, however long the quiet", { tokens: 3, atMs: t0 }, t0 + 3_600_000, true, AGENT_REPORT_RATE.burst - 1],
    ["a clock that went backwards refills nothing", { tokens: 0.5, atMs: t0 }, t0 - 5000, false],
  ];
  for (const [name, state, now, allowed, left] of cases) {
    it(name, () => {
      const d = takeToken(state, now);
      expect(d.allowed).to.equal(allowed);
      if (d.allowed && left !== undefined) expect(d.next.tokens).to.be.closeTo(left, 1e-9);
      if (!d.allowed) expect(d.retryAfterSeconds).to.be.at.least(1);
    });
  }
});

describe("agent channel: routes and refusals (moto)", function () {
  this.timeout(60_000);
  let config: RuntimeConfig;
  let clock: FakeClock;
  let rt: Runtime;

  before(async () => {
    config = testConfig();
    await createTables(config);
  });
  beforeEach(() => {
    clock = new FakeClock();
    rt = createRuntime(config, { now: clock.now });
  });

  /** A task as the start step leaves it: STARTING, with a token in its payload and its hash on the record. */
  async function startedTask(): Promise<{ task: TaskRecord; token: string }> {
    const created = await createTask(rt);
    await rt.tasks.transition(created.task_id, "STARTING");
    await prepareAgentChannel(rt, (await rt.tasks.get(created.task_id))!, created.payload_uri!);
    const token = (await rt.payloads.get(created.payload_uri!)).channel!.token;
    return { task: (await rt.tasks.get(created.task_id))!, token };
  }

  function call(route: string, taskId: string, token: string | undefined, body?: unknown, on: Runtime = rt, method = "POST"): Promise<ApiResponse> {
    return handleApiRequest(on, noDispatch, {
      method,
      path: `/agent/v1/tasks/${encodeURIComponent(taskId)}/${route}`,
      headers: token === undefined ? {} : { Authorization: `Bearer ${token}` },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
      userId: "",
    });
  }

  async function snapshot(taskId: string) {
    return { record: await rt.tasks.get(taskId), events: (await rt.events.list(taskId, { limit: 500 })).items.length };
  }

  it("issues a 43-character token into the payload and keeps only its SHA-256 on the record", async () => {
    const { task, token } = await startedTask();
    expect(token).to.match(AGENT_TOKEN_PATTERN);
    expect(task.agent_token_sha256).to.match(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(task)).to.not.contain(token);
    const payload = await rt.payloads.get(task.payload_uri!);
    expect(payload.channel).to.deep.equal({ url: "https://api.example.test", token });
  });

  it("a replayed start hands out the same token; a payload whose token does not match the record gets a new one", async () => {
    const { task, token } = await startedTask();
    await prepareAgentChannel(rt, task, task.payload_uri!);
    expect((await rt.payloads.get(task.payload_uri!)).channel!.token).to.equal(token);
    // A crash between writing the payload and the record's hash leaves them apart: the next attempt repairs it.
    await rt.payloads.replace(task.payload_uri!, { ...(await rt.payloads.get(task.payload_uri!)), channel: { url: "https://api.example.test", token: newAgentToken().token } });
    await prepareAgentChannel(rt, task, task.payload_uri!);
    const again = (await rt.payloads.get(task.payload_uri!)).channel!.token;
    expect(again).to.not.equal(token);
    expect((await call("heartbeat", task.task_id, again, {})).statusCode).to.equal(200);
    expect((await call("heartbeat", task.task_id, token, {})).statusCode).to.equal(401);
  });

  it("running, heartbeat, events and result: the whole life of an honest agent", async () => {
    const { task, token } = await startedTask();
    const running = await call("running", task.task_id, token, {});
    expect([running.statusCode, JSON.parse(running.body)]).to.deep.equal([200, { status: "RUNNING" }]);
    expect((await call("running", task.task_id, token, {})).statusCode, "a repeated RUNNING is fine").to.equal(200);
    clock.advance(5);
    const beat = await call("heartbeat", task.task_id, token, {});
    expect([beat.statusCode, JSON.parse(beat.body)]).to.deep.equal([200, { status: "RUNNING" }]);
    expect((await rt.tasks.get(task.task_id))!.agent_heartbeat_at).to.equal(clock.now().toISOString());
    const ev = await call("events", task.task_id, token, { type: "progress", message: "half way", data: { step: 1 } });
    expect([ev.statusCode, JSON.parse(ev.body)]).to.deep.equal([202, {}]);
    const mine = (await rt.events.list(task.task_id, { limit: 100 })).items.find((e) => e.message === "half way");
    expect(mine).to.include({ type: "progress", source: "agent" });
    const result = await call("result", task.task_id, token, { status: "COMPLETED", exit_code: 0, pr_url: "https://github.com/a/b/pull/1", cost_usd: 0.5, turns: 3, summary: "done" });
    expect([result.statusCode, JSON.parse(result.body)]).to.deep.equal([200, { status: "COMPLETED" }]);
    expect(await rt.tasks.get(task.task_id)).to.include({ status: "COMPLETED", exit_code: 0, pr_url: "https://github.com/a/b/pull/1", cost_usd: 0.5, turns: 3, summary: "done" });
    // The result's answer was lost and the agent repeats it: it learns the outcome.
    const repeat = await call("result", task.task_id, token, { status: "COMPLETED", exit_code: 0, pr_url: "https://github.com/a/b/pull/1", cost_usd: 0.5, turns: 3, summary: "done" });
    expect([repeat.statusCode, JSON.parse(repeat.body)]).to.deep.equal([409, { status: "COMPLETED" }]);
  });

  it("a valid token of task A is refused on task B, and B is unchanged", async () => {
    const a = await startedTask();
    const b = await startedTask();
    const before = await snapshot(b.task.task_id);
    for (const [route, body] of [["running", {}], ["heartbeat", {}], ["events", { type: "info", message: "forged" }], ["result", { status: "COMPLETED", exit_code: 0, pr_url: "https://evil.example/pr" }]] as const) {
      const res = await call(route, b.task.task_id, a.token, body);
      expect(res.statusCode, route).to.equal(401);
      expect(JSON.parse(res.body).error).to.contain("not valid");
    }
    expect((await call("credentials", b.task.task_id, a.token, undefined, rt, "GET")).statusCode).to.equal(401);
    expect(await snapshot(b.task.task_id)).to.deep.equal(before);
  });

  const badTokens: [string, string | undefined][] = [
    ["no Authorization header", undefined],
    ["an empty token", ""],
    ["a token of the wrong shape", "abc"],
    ["a well-formed token that is no task's", newAgentToken().token],
  ];
  for (const [name, token] of badTokens) {
    it(`${name}: 401, nothing changed`, async () => {
      const { task } = await startedTask();
      const before = await snapshot(task.task_id);
      for (const route of ["running", "heartbeat", "events", "result"]) {
        expect((await call(route, task.task_id, token, { type: "info", message: "x" })).statusCode, route).to.equal(401);
      }
      expect(await snapshot(task.task_id)).to.deep.equal(before);
    });
  }

  it("a token is refused once its task has ended (cancelled): every route, nothing changed", async () => {
    const { task, token } = await startedTask();
    expect((await call("running", task.task_id, token, {})).statusCode).to.equal(200);
    await rt.tasks.transition(task.task_id, "CANCELLED", { error_message: "cancelled by the user" });
    clock.advance(10);
    const before = await snapshot(task.task_id);
    for (const [route, body] of [["running", {}], ["heartbeat", {}], ["events", { type: "info", message: "late" }], ["result", { status: "COMPLETED", exit_code: 0 }]] as const) {
      const res = await call(route, task.task_id, token, body);
      expect(res.statusCode, route).to.equal(401);
      expect(JSON.parse(res.body).error).to.contain("CANCELLED");
    }
    expect((await call("credentials", task.task_id, token, undefined, rt, "GET")).statusCode).to.equal(401);
    expect(await snapshot(task.task_id)).to.deep.equal(before);
  });

  const malformed: [string, string, unknown, number, string | undefined][] = [
    ["events: an unknown type", "events", { type: "status", message: "x" }, 400, "type"],
    ["events: no message", "events", { type: "info" }, 400, "message"],
    ["events: a message over 2000 characters", "events", { type: "info", message: "m".repeat(2001) }, 400, "message"],
    ["events: data that is not an object", "events", { type: "info", message: "x", data: [1] }, 400, "data"],
    ["events: data over 8 KiB", "events", { type: "info", message: "x", data: { blob: "d".repeat(8 * 1024) } }, 400, "data"],
    ["events: an unknown field", "events", { type: "info", message: "x", status: "COMPLETED" }, 400, "status"],
    ["events: not JSON", "events", "{type:", 400, "body"],
    ["events: a body over 64 KiB", "events", { type: "info", message: "x", pad: "p".repeat(70 * 1024) }, 413, undefined],
    ["running: a non-empty body", "running", { status: "COMPLETED" }, 400, "status"],
    ["heartbeat: a body that is not an object", "heartbeat", "[]", 400, "body"],
    ["result: an unknown status", "result", { status: "CANCELLED", exit_code: 0 }, 400, "status"],
    ["result: FAILED without error_message", "result", { status: "FAILED", exit_code: 1 }, 400, "error_message"],
    ["result: a non-integer exit code", "result", { status: "COMPLETED", exit_code: 0.5 }, 400, "exit_code"],
    ["result: an http:// pr_url", "result", { status: "COMPLETED", exit_code: 0, pr_url: "http://github.com/a/b/pull/1" }, 400, "pr_url"],
    ["result: a negative cost", "result", { status: "COMPLETED", exit_code: 0, cost_usd: -1 }, 400, "cost_usd"],
    ["result: a summary over 4000 characters", "result", { status: "COMPLETED", exit_code: 0, summary: "s".repeat(4001) }, 400, "summary"],
    ["result: a field the record must not take from an agent", "result", { status: "COMPLETED", exit_code: 0, user_id: "mallory" }, 400, "user_id"],
  ];
  for (const [name, route, body, code, field] of malformed) {
    it(`${name}: ${code}${field ? ` naming ${field}` : ""}, nothing changed`, async () => {
      const { task, token } = await startedTask();
      const before = await snapshot(task.task_id);
      const res = await call(route, task.task_id, token, body);
      expect(res.statusCode, res.body).to.equal(code);
      if (field) expect(JSON.parse(res.body).field).to.equal(field);
      expect(await snapshot(task.task_id)).to.deep.equal(before);
    });
  }

  it("a flood of events: 120 at once pass, the rest get 429 with Retry-After, across two API instances; the bucket refills", async () => {
    const { task, token } = await startedTask();
    // A second runtime over the same tables stands for a second Lambda instance: the limit is on the record.
    const other = createRuntime(config, { now: clock.now });
    const answers: ApiResponse[] = [];
    for (let i = 0; i < 130; i++) answers.push(await call("events", task.task_id, token, { type: "info", message: `e${i}` }, i % 2 ? other : rt));
    const codes = answers.map((a) => a.statusCode);
    expect(codes.filter((c) => c === 202)).to.have.length(AGENT_REPORT_RATE.burst);
    expect(codes.slice(AGENT_REPORT_RATE.burst).every((c) => c === 429)).to.equal(true);
    expect(answers[AGENT_REPORT_RATE.burst].headers["retry-after"]).to.equal("1");
    const agentEvents = async () => (await rt.events.list(task.task_id, { limit: 500 })).items.filter((e) => e.source === "agent").length;
    expect(await agentEvents()).to.equal(AGENT_REPORT_RATE.burst);
    clock.advance(10);
    for (let i = 0; i < 12; i++) answers.push(await call("events", task.task_id, token, { type: "info", message: `later${i}` }));
    expect(answers.slice(-12).map((a) => a.statusCode).filter((c) => c === 202)).to.have.length(10);
    expect(await agentEvents()).to.equal(AGENT_REPORT_RATE.burst + 10);
  });

  it("a flood of heartbeats writes at most one per second", async () => {
    const { task, token } = await startedTask();
    await call("running", task.task_id, token, {});
    clock.advance(2);
    expect((await call("heartbeat", task.task_id, token, {})).statusCode).to.equal(200);
    const after = await rt.tasks.get(task.task_id);
    for (let i = 0; i < 20; i++) expect((await call("heartbeat", task.task_id, token, {})).statusCode).to.equal(200);
    expect(await rt.tasks.get(task.task_id)).to.deep.equal(after);
  });

  it("credentials: 404 naming the repository when none are configured; a provider's answer otherwise, never cached", async () => {
    const { task, token } = await startedTask();
    const none = await call("credentials", task.task_id, token, undefined, rt, "GET");
    expect([none.statusCode, JSON.parse(none.body)]).to.deep.equal([404, { error: `no repository credentials are configured for ${task.repo_url}` }]);
    const seen: string[] = [];
    const withCreds = createRuntime(config, {
      now: clock.now,
      repoCredentials: {
        getGitCredentials: async (t) => {
          seen.push(t.task_id);
          return { username: "x-access-token", token: "ghs_secret", expires_at: "2030-01-01T01:00:00Z" };
        },
      },
    });
    const res = await call("credentials", task.task_id, token, undefined, withCreds, "GET");
    expect(res.statusCode).to.equal(200);
    expect(JSON.parse(res.body)).to.deep.equal({ git: { username: "x-access-token", token: "ghs_secret", expires_at: "2030-01-01T01:00:00Z" } });
    expect(res.headers["cache-control"]).to.equal("no-store");
    expect(seen).to.deep.equal([task.task_id]);
    expect(JSON.stringify((await rt.events.list(task.task_id, { limit: 100 })).items)).to.not.contain("ghs_secret");
  });

  it("wrong methods and unknown routes: 405 and 404, before any token check", async () => {
    const { task, token } = await startedTask();
    expect((await call("heartbeat", task.task_id, token, undefined, rt, "GET")).statusCode).to.equal(405);
    expect((await call("credentials", task.task_id, token, {}, rt, "POST")).statusCode).to.equal(405);
    expect((await call("status", task.task_id, token, {})).statusCode).to.equal(404);
  });

  it("the task views never show the token's hash or the rate bucket", async () => {
    const { task, token } = await startedTask();
    await call("events", task.task_id, token, { type: "info", message: "x" });
    const res = await handleApiRequest(rt, noDispatch, { method: "GET", path: `/tasks/${task.task_id}`, userId: task.user_id });
    expect(res.statusCode).to.equal(200);
    const view = JSON.parse(res.body).task;
    for (const hidden of ["agent_token_sha256", "agent_report_tokens", "agent_report_at_ms", "payload_uri"]) expect(view).to.not.have.property(hidden);
  });
});
