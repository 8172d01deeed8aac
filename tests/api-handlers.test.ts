import { Logger } from "@aws-lambda-powertools/logger";
import { expect } from "chai";
import { handleApiRequest, type ApiRequest } from "../runtime/api/router";
import { PROMPT_PREVIEW_CHARS } from "../runtime/api/submit";
import { createRuntime } from "../runtime/runtime";
import { apiFixture, GOOD_SUBMIT, type ApiFixture } from "./api-helpers";
import { captureLogs } from "./fixtures";

const ALICE = "arn:aws:iam::111122223333:user/alice";
const BOB = "arn:aws:iam::111122223333:user/bob";

function call(fx: ApiFixture, req: Partial<ApiRequest> & { userId: string }) {
  return handleApiRequest(fx.runtime, fx.dispatcher, { method: "GET", path: "/tasks", ...req }).then((res) => ({
    ...res,
    json: JSON.parse(res.body),
  }));
}

function submit(fx: ApiFixture, userId: string, body: unknown = GOOD_SUBMIT, key?: string) {
  return call(fx, {
    method: "POST",
    path: "/tasks",
    body: JSON.stringify(body),
    headers: key ? { "Idempotency-Key": key } : {},
    userId,
  });
}

describe("task API: submit", () => {
  let fx: ApiFixture;
  beforeEach(async () => {
    fx = await apiFixture({ "https://github.com/acme/gpu-models": { backend: "ec2", fleet: "gpu", model: "bp-model", max_turns: 7 } });
  });
  afterEach(async () => fx.cleanup());

  it("writes the payload, a SUBMITTED record pointing at it, an event, and dispatches once", async () => {
    const res = await submit(fx, ALICE, { ...GOOD_SUBMIT, context: { work_seconds: 2 } });
    expect(res.statusCode).to.equal(201);
    const id = res.json.task.task_id;
    expect(res.json.task).to.include({ status: "SUBMITTED", user_id: ALICE, backend: "local", repo_url: GOOD_SUBMIT.repo_url });
    const record = await fx.runtime.tasks.get(id);
    expect(record?.payload_uri).to.be.a("string");
    const payload = await fx.runtime.payloads.get(record!.payload_uri!);
    expect(payload).to.deep.include({ task_id: id, prompt: GOOD_SUBMIT.prompt, context: { work_seconds: 2 } });
    const events = await fx.runtime.events.list(id);
    expect(events.items.map((e) => e.status)).to.deep.equal(["SUBMITTED"]);
    expect(fx.dispatched).to.deep.equal([id]);
  });

  it("resolves the backend from the repo blueprint and takes its model and limits unless the request sets them", async () => {
    const res = await submit(fx, ALICE, { repo_url: "https://github.com/acme/gpu-models", prompt: "train", max_turns: 3 });
    expect(res.statusCode).to.equal(201);
    expect(res.json.task).to.include({ backend: "ec2", fleet: "gpu", model: "bp-model", max_turns: 3 });
  });

  it("keeps a 1 MiB prompt whole in the payload and a bounded preview on the record", async () => {
    const prompt = "é".repeat(512 * 1024);
    const res = await submit(fx, ALICE, { ...GOOD_SUBMIT, prompt });
    expect(res.statusCode).to.equal(201);
    const record = await fx.runtime.tasks.get(res.json.task.task_id);
    expect(record!.prompt.length).to.equal(PROMPT_PREVIEW_CHARS + 1);
    expect((await fx.runtime.payloads.get(record!.payload_uri!)).prompt).to.equal(prompt);
  });

  it("a dispatch failure fails the task (502), says why, and removes the payload", async () => {
    fx.dispatcher.fail = new Error("orchestrator function is throttled");
    const res = await submit(fx, ALICE);
    expect(res.statusCode).to.equal(502);
    expect(res.json.error).to.contain("orchestrator function is throttled");
    const record = await fx.runtime.tasks.get(res.json.task.task_id);
    expect(record).to.include({ status: "FAILED" });
    expect(record!.error_message).to.contain("throttled");
    expect(await fx.payloadFiles()).to.deep.equal([]);
  });
});

describe("task API: idempotency", () => {
  let fx: ApiFixture;
  beforeEach(async () => {
    fx = await apiFixture();
  });
  afterEach(async () => fx.cleanup());

  it("the same key twice from one user gives one task (201, then 200 replayed)", async () => {
    const first = await submit(fx, ALICE, GOOD_SUBMIT, "deploy-42");
    const second = await submit(fx, ALICE, { prompt: GOOD_SUBMIT.prompt, repo_url: GOOD_SUBMIT.repo_url }, "deploy-42");
    expect(first.statusCode).to.equal(201);
    expect(second.statusCode).to.equal(200);
    expect(second.headers["Idempotency-Replayed"]).to.equal("true");
    expect(second.json.task.task_id).to.equal(first.json.task.task_id);
    expect(await fx.taskCount()).to.equal(1);
    expect(new Set(fx.dispatched)).to.deep.equal(new Set([first.json.task.task_id]));
  });

  it("a retry of a task still SUBMITTED dispatches it again (the first dispatch may have been lost); a later one does not", async () => {
    const first = await submit(fx, ALICE, GOOD_SUBMIT, "retry-me");
    const id = first.json.task.task_id;
    fx.dispatched.length = 0; // as if the first request died before its dispatch
    await submit(fx, ALICE, GOOD_SUBMIT, "retry-me");
    expect(fx.dispatched).to.deep.equal([id]);
    await fx.runtime.tasks.transition(id, "STARTING");
    await submit(fx, ALICE, GOOD_SUBMIT, "retry-me");
    expect(fx.dispatched).to.deep.equal([id]);
  });

  it("the same key with a different body is a 409 naming the key, and nothing new is written", async () => {
    await submit(fx, ALICE, GOOD_SUBMIT, "deploy-42");
    const files = await fx.payloadFiles();
    const res = await submit(fx, ALICE, { ...GOOD_SUBMIT, prompt: "something else" }, "deploy-42");
    expect(res.statusCode).to.equal(409);
    expect(res.json.field).to.equal("Idempotency-Key");
    expect(await fx.taskCount()).to.equal(1);
    expect(await fx.payloadFiles()).to.deep.equal(files);
  });

  it("the same key from two users gives two tasks", async () => {
    const a = await submit(fx, ALICE, GOOD_SUBMIT, "k");
    const b = await submit(fx, BOB, GOOD_SUBMIT, "k");
    expect(a.statusCode).to.equal(201);
    expect(b.statusCode).to.equal(201);
    expect(a.json.task.task_id).to.not.equal(b.json.task.task_id);
  });

  it("10 concurrent submits with one key create exactly one task, dispatched, with one payload", async () => {
    const results = await Promise.all(Array.from({ length: 10 }, () => submit(fx, ALICE, GOOD_SUBMIT, "burst")));
    const ids = new Set(results.map((r) => r.json.task.task_id));
    expect(ids.size).to.equal(1);
    expect(results.filter((r) => r.statusCode === 201)).to.have.length(1);
    expect(results.filter((r) => r.statusCode === 200)).to.have.length(9);
    expect(await fx.taskCount()).to.equal(1);
    expect(new Set(fx.dispatched)).to.deep.equal(ids);
    expect(await fx.payloadFiles()).to.have.length(1);
  });

  it("concurrent submits with one key but different bodies: one wins, the rest get 409, one payload remains", async () => {
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) => submit(fx, ALICE, { ...GOOD_SUBMIT, prompt: `variant ${i}` }, "clash")),
    );
    expect(results.filter((r) => r.statusCode === 201)).to.have.length(1);
    expect(results.filter((r) => r.statusCode === 409)).to.have.length(5);
    expect(await fx.taskCount()).to.equal(1);
    const record = await fx.runtime.tasks.get(results.find((r) => r.statusCode === 201)!.json.task.task_id);
    expect(await fx.payloadFiles()).to.deep.equal([record!.payload_uri]);
  });
});

describe("task API: users see only their own tasks", () => {
  let fx: ApiFixture;
  let aliceTask: string;
  before(async () => {
    fx = await apiFixture();
    aliceTask = (await submit(fx, ALICE)).json.task.task_id;
  });
  after(async () => fx.cleanup());

  const routes: [string, string, string][] = [
    ["get", "GET", ""],
    ["events", "GET", "/events"],
    ["cancel", "POST", "/cancel"],
  ];
  for (const [name, method, suffix] of routes) {
    it(`${name} of another user's task is 404, exactly like a missing task`, async () => {
      const other = await call(fx, { method, path: `/tasks/${aliceTask}${suffix}`, userId: BOB });
      const missing = await call(fx, { method, path: `/tasks/0000000000000000${suffix}`, userId: BOB });
      expect(other.statusCode).to.equal(404);
      expect(missing.statusCode).to.equal(404);
      expect(other.json.error).to.equal(`task ${aliceTask} not found`);
      expect((await fx.runtime.tasks.get(aliceTask))!.status).to.equal("SUBMITTED");
    });
  }

  it("the owner can read the task and its events", async () => {
    const got = await call(fx, { path: `/tasks/${aliceTask}`, userId: ALICE });
    expect(got.statusCode).to.equal(200);
    expect(got.json.task.task_id).to.equal(aliceTask);
    expect(got.json.task).to.not.have.property("request_hash");
    const events = await call(fx, { path: `/tasks/${aliceTask}/events`, userId: ALICE });
    expect(events.json.events.map((e: { status: string }) => e.status)).to.deep.equal(["SUBMITTED"]);
  });

  it("a list shows only the caller's tasks", async () => {
    await submit(fx, BOB);
    const bobs = await call(fx, { path: "/tasks", userId: BOB });
    expect(bobs.json.tasks).to.have.length(1);
    expect(bobs.json.tasks[0].user_id).to.equal(BOB);
    const alices = await call(fx, { path: "/tasks", userId: ALICE });
    expect(alices.json.tasks.map((t: { task_id: string }) => t.task_id)).to.deep.equal([aliceTask]);
  });

  it("a request without a caller is 403", async () => {
    const res = await call(fx, { path: `/tasks/${aliceTask}`, userId: "" });
    expect(res.statusCode).to.equal(403);
  });
});

describe("task API: list pagination and cancel", () => {
  let fx: ApiFixture;
  const ids: string[] = [];
  before(async () => {
    fx = await apiFixture();
    for (let i = 0; i < 5; i++) ids.push((await submit(fx, ALICE, { ...GOOD_SUBMIT, prompt: `task ${i}` })).json.task.task_id);
    await fx.runtime.tasks.transition(ids[1], "FAILED", { error_message: "test" });
    await fx.runtime.tasks.transition(ids[3], "FAILED", { error_message: "test" });
  });
  after(async () => fx.cleanup());

  async function pages(query: Record<string, string>): Promise<string[][]> {
    const out: string[][] = [];
    let token: string | undefined;
    do {
      const res = await call(fx, { path: "/tasks", query: { ...query, ...(token ? { next_token: token } : {}) }, userId: ALICE });
      expect(res.statusCode, res.body).to.equal(200);
      out.push(res.json.tasks.map((t: { task_id: string }) => t.task_id));
      token = res.json.next_token;
    } while (token && out.length < 20);
    return out;
  }

  it("pages of 2 cover all 5 tasks once, newest first, and the last page has no next_token", async () => {
    const all = await pages({ limit: "2" });
    expect(all[0]).to.have.length(2);
    expect(all.flat()).to.have.members(ids);
    expect(all.flat()).to.have.length(5);
    expect(all.flat()[0]).to.equal(ids[4]);
  });

  it("a status filter returns just those tasks across pages", async () => {
    expect((await pages({ status: "FAILED", limit: "2" })).flat()).to.have.members([ids[1], ids[3]]);
  });

  it("a forged next_token is a 400 naming next_token", async () => {
    const res = await call(fx, { path: "/tasks", query: { next_token: "not*a*token" }, userId: ALICE });
    expect(res.statusCode).to.equal(400);
    expect(res.json.field).to.equal("next_token");
  });

  it("cancel of a terminal task is 409 and leaves it as it was", async () => {
    const res = await call(fx, { method: "POST", path: `/tasks/${ids[1]}/cancel`, userId: ALICE });
    expect(res.statusCode).to.equal(409);
    expect(res.json.status).to.equal("FAILED");
    expect((await fx.runtime.tasks.get(ids[1]))!.status).to.equal("FAILED");
  });

  it("cancel of a SUBMITTED task makes it CANCELLED with the reason", async () => {
    const res = await call(fx, { method: "POST", path: `/tasks/${ids[0]}/cancel`, body: JSON.stringify({ reason: "changed my mind" }), userId: ALICE });
    expect(res.statusCode, res.body).to.equal(200);
    expect(res.json.task).to.include({ status: "CANCELLED", error_message: "changed my mind" });
  });

  const badRoutes: [string, string, number][] = [
    ["DELETE", "/tasks", 405],
    ["PUT", `/tasks/abc`, 405],
    ["GET", "/tasks/abc/cancel", 405],
    ["GET", "/tasks/abc/logs", 404],
    ["GET", "/jobs", 404],
    ["GET", "/tasks/bad%20id", 400],
    ["GET", "/tasks/%E0%A4%A", 400],
    ["POST", "/tasks/%ZZ/cancel", 400],
  ];
  for (const [method, path, status] of badRoutes) {
    it(`${method} ${path} → ${status}`, async () => {
      const res = await call(fx, { method, path, userId: ALICE });
      expect(res.statusCode).to.equal(status);
      if (status === 400) expect(res.json.field).to.equal("task_id");
    });
  }
});

describe("task API: a malformed cancel body or query is a 400 naming the field, and changes nothing", () => {
  let fx: ApiFixture;
  let id: string;
  before(async () => {
    fx = await apiFixture();
    id = (await submit(fx, ALICE)).json.task.task_id;
  });
  after(async () => fx.cleanup());

  const cases: { name: string; method: string; suffix: string; body?: string; query?: Record<string, string>; field: string }[] = [
    { name: "cancel with an unknown field", method: "POST", suffix: "/cancel", body: '{"why": "x"}', field: "why" },
    { name: "cancel with a non-text reason", method: "POST", suffix: "/cancel", body: '{"reason": 5}', field: "reason" },
    { name: "cancel with a reason over 1000 characters", method: "POST", suffix: "/cancel", body: JSON.stringify({ reason: "r".repeat(1001) }), field: "reason" },
    { name: "cancel with a JSON array body", method: "POST", suffix: "/cancel", body: "[]", field: "body" },
    { name: "cancel with a body that is not JSON", method: "POST", suffix: "/cancel", body: "stop it", field: "body" },
    { name: "events with limit 0", method: "GET", suffix: "/events", query: { limit: "0" }, field: "limit" },
    { name: "events with an unknown parameter", method: "GET", suffix: "/events", query: { since: "1" }, field: "since" },
    { name: "events with an empty next_token", method: "GET", suffix: "/events", query: { next_token: "" }, field: "next_token" },
    { name: "events with a forged next_token", method: "GET", suffix: "/events", query: { next_token: "zzz" }, field: "next_token" },
  ];
  for (const c of cases) {
    it(`${c.name} → 400 naming '${c.field}'`, async () => {
      const eventsBefore = await fx.eventCount();
      const res = await call(fx, { method: c.method, path: `/tasks/${id}${c.suffix}`, body: c.body, query: c.query, userId: ALICE });
      expect(res.statusCode, res.body).to.equal(400);
      expect(res.json.field).to.equal(c.field);
      expect((await fx.runtime.tasks.get(id))!.status).to.equal("SUBMITTED");
      expect(await fx.eventCount()).to.equal(eventsBefore);
    });
  }
});

describe("task API: an internal error", () => {
  let fx: ApiFixture;
  beforeEach(async () => {
    fx = await apiFixture();
  });
  afterEach(async () => fx.cleanup());

  it("answers 500 without internals and logs one line, through Powertools, naming the task", async () => {
    const id = (await submit(fx, ALICE)).json.task.task_id as string;
    const tasks = fx.runtime.tasks;
    const broken = createRuntime(fx.config, {
      tasks: new Proxy(tasks, {
        get: (target, key) => (key === "get" ? async () => Promise.reject(new Error("DynamoDB endpoint unreachable")) : Reflect.get(target, key)),
      }),
    });
    const service = "agent-compute-api";
    const logger = new Logger({ serviceName: service, logLevel: "INFO" });
    const { result: res, lines } = await captureLogs(service, () =>
      handleApiRequest(broken, fx.dispatcher, { method: "GET", path: `/tasks/${id}`, userId: ALICE }, logger),
    );
    expect(res.statusCode).to.equal(500);
    expect(res.body).to.not.include("unreachable");
    expect(lines).to.have.length(1);
    expect(lines[0]).to.include({ level: "ERROR", task_id: id });
    expect(JSON.stringify(lines[0])).to.include("DynamoDB endpoint unreachable");
  });
});
