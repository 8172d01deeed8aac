import { randomBytes } from "node:crypto";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { expect } from "chai";
import { awsClient } from "../runtime/aws/clients";
import type { RuntimeConfig } from "../runtime/config";
import { DEFAULT_LIMITS } from "../runtime/limits";
import { IllegalTransitionError, TaskExistsError } from "../runtime/errors";
import { ensureTables, type TableName } from "../runtime/tables";
import type { TaskRecord } from "../runtime/tasks/record";
import { TASK_STATUSES, TRANSITIONS, type TaskStatus } from "../runtime/tasks/status";
import { DynamoEventLog, EventIdGenerator } from "../runtime/tasks/events";
import { decodePageToken, InvalidPageTokenError } from "../runtime/tasks/paging";
import { DynamoTaskStore, TaskNotInStatusError } from "../runtime/tasks/store";

const suffix = randomBytes(4).toString("hex");
const tables: Record<TableName, string> = {
  tasks: `tasks-${suffix}`,
  events: `events-${suffix}`,
  leases: `leases-${suffix}`,
  concurrency: `concurrency-${suffix}`,
  repos: `repos-${suffix}`,
  waiters: `waiters-${suffix}`,
};

function config(): RuntimeConfig {
  return {
    region: "us-east-1",
    tables,
    payload: { kind: "file", dir: "/tmp" },
    defaultBackend: "local",
    enabledBackends: ["local"],
    limits: { ...DEFAULT_LIMITS, retentionDays: 7 },
  };
}

let seq = 0;
function record(status: TaskStatus, over: Partial<TaskRecord> = {}): TaskRecord {
  const now = new Date(Date.UTC(2026, 0, 1, 0, 0, seq++)).toISOString();
  return {
    task_id: `t-${suffix}-${seq}-${randomBytes(3).toString("hex")}`,
    user_id: "alice",
    status,
    repo_url: "https://github.com/acme/app",
    prompt: "fix the bug",
    created_at: now,
    updated_at: now,
    ...over,
  };
}

describe("task store (DynamoDB, against moto)", () => {
  let store: DynamoTaskStore;
  let events: DynamoEventLog;

  before(async () => {
    await ensureTables(awsClient(DynamoDBClient, { region: "us-east-1" }), tables);
    store = new DynamoTaskStore(config());
    events = new DynamoEventLog(config());
  });

  const legal = TASK_STATUSES.flatMap((from) => TRANSITIONS[from].map((to) => [from, to] as const));
  const illegal = TASK_STATUSES.flatMap((from) =>
    TASK_STATUSES.filter((to) => !TRANSITIONS[from].includes(to)).map((to) => [from, to] as const),
  );

  it("the legal and illegal tables together cover every pair of statuses", () => {
    expect(legal.length + illegal.length).to.equal(TASK_STATUSES.length ** 2);
    expect(legal.length).to.be.greaterThan(10);
  });

  for (const [from, to] of legal) {
    it(`moves ${from} → ${to} and returns the new record`, async () => {
      const r = record(from);
      await store.create(r);
      const out = await store.transition(r.task_id, to, { error_message: to === "FAILED" ? "boom" : undefined });
      expect(out.status).to.equal(to);
      expect((await store.get(r.task_id))?.status).to.equal(to);
      if (to === "FAILED") expect(out.error_message).to.equal("boom");
    });
  }

  const illegalSamples: [TaskStatus, TaskStatus][] = [
    ["COMPLETED", "RUNNING"],
    ["SUBMITTED", "RUNNING"],
    ["CANCELLED", "COMPLETED"],
    ["RUNNING", "QUEUED"],
    ["FAILED", "FAILED"],
    ["QUEUED", "COMPLETED"],
  ];
  for (const [from, to] of illegalSamples) {
    it(`refuses ${from} → ${to}, names the actual status ${from}, and leaves the record unchanged`, async () => {
      const r = record(from);
      await store.create(r);
      const before = await store.get(r.task_id);
      const err = await store.transition(r.task_id, to, { pr_url: "https://x/pr/1" }).catch((e) => e);
      expect(err).to.be.instanceOf(IllegalTransitionError);
      expect(err.actual).to.equal(from);
      expect(err.message).to.contain(from).and.contain(to);
      expect(await store.get(r.task_id)).to.deep.equal(before);
    });
  }

  it("refuses a transition outside the caller's own `from` list even when the table allows it", async () => {
    const r = record("RUNNING");
    await store.create(r);
    const err = await store.transition(r.task_id, "FAILED", {}, ["STARTING"]).catch((e) => e);
    expect(err).to.be.instanceOf(IllegalTransitionError);
    expect(err.actual).to.equal("RUNNING");
    expect((await store.get(r.task_id))?.status).to.equal("RUNNING");
  });

  it("refuses a transition of a task that does not exist, saying so", async () => {
    const err = await store.transition(`missing-${suffix}`, "RUNNING").catch((e) => e);
    expect(err).to.be.instanceOf(IllegalTransitionError);
    expect(err.actual).to.equal(undefined);
    expect(err.message).to.contain("does not exist");
  });

  it("lets exactly one of many racing transitions out of the same status win", async () => {
    const r = record("RUNNING");
    await store.create(r);
    const targets: TaskStatus[] = ["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT", "COMPLETED", "CANCELLED", "FAILED", "TIMED_OUT"];
    const results = await Promise.allSettled(targets.map((to) => store.transition(r.task_id, to)));
    const won = results.filter((x) => x.status === "fulfilled") as PromiseFulfilledResult<TaskRecord>[];
    const lost = results.filter((x) => x.status === "rejected") as PromiseRejectedResult[];
    expect(won).to.have.length(1);
    const final = (await store.get(r.task_id))!.status;
    expect(won[0].value.status).to.equal(final);
    for (const l of lost) {
      expect(l.reason).to.be.instanceOf(IllegalTransitionError);
      expect(l.reason.actual).to.equal(final);
    }
  });

  it("entering a terminal status sets finished_at and a ttl of retentionDays after it", async () => {
    const now = new Date("2026-03-01T10:00:00.000Z");
    const clocked = new DynamoTaskStore(config(), { now: () => now });
    const r = record("RUNNING");
    await clocked.create(r);
    const out = await clocked.transition(r.task_id, "COMPLETED", { exit_code: 0 });
    expect(out.finished_at).to.equal(now.toISOString());
    expect(out.ttl).to.equal(now.getTime() / 1000 + 7 * 86400);
    expect(out.exit_code).to.equal(0);
  });

  it("a non-terminal transition sets neither finished_at nor ttl, and RUNNING stamps started_at once", async () => {
    const r = record("STARTING");
    await store.create(r);
    const out = await store.transition(r.task_id, "RUNNING");
    expect(out.finished_at).to.equal(undefined);
    expect(out.ttl).to.equal(undefined);
    expect(out.started_at).to.be.a("string");
  });

  it("create refuses a taken task id with TaskExistsError", async () => {
    const r = record("SUBMITTED");
    await store.create(r);
    const err = await store.create({ ...r, prompt: "other" }).catch((e) => e);
    expect(err).to.be.instanceOf(TaskExistsError);
    expect((await store.get(r.task_id))?.prompt).to.equal("fix the bug");
  });

  it("stores and returns a compute handle as a nested map", async () => {
    const r = record("SUBMITTED");
    await store.create(r);
    const handle = { type: "local" as const, pid: 1234, runDir: "/tmp/run" };
    const out = await store.transition(r.task_id, "STARTING", { compute_type: "local", compute_metadata: handle });
    expect(out.compute_metadata).to.deep.equal(handle);
  });

  it("statuses reads many tasks in batches of 100, and maps a missing task to undefined", async () => {
    const made = await Promise.all(
      Array.from({ length: 130 }, async (_, i) => {
        const r = record("SUBMITTED");
        await store.create(r);
        if (i % 2) await store.transition(r.task_id, "QUEUED");
        return { id: r.task_id, status: i % 2 ? "QUEUED" : "SUBMITTED" };
      }),
    );
    const statuses = await store.statuses([...made.map((m) => m.id), "no-such-task", made[0].id]);
    expect(statuses.size).to.equal(131);
    for (const m of made) expect(statuses.get(m.id), m.id).to.equal(m.status);
    expect(statuses.has("no-such-task")).to.equal(true);
    expect(statuses.get("no-such-task")).to.equal(undefined);
  });

  const heartbeatCases: [TaskStatus, boolean][] = [
    ["STARTING", true],
    ["RUNNING", true],
    ["SUBMITTED", false],
    ["QUEUED", false],
    ["COMPLETED", false],
    ["CANCELLED", false],
  ];
  for (const [status, accepted] of heartbeatCases) {
    it(`heartbeat while ${status} is ${accepted ? "recorded" : "refused with the actual status"}`, async () => {
      const r = record(status);
      await store.create(r);
      const at = new Date("2026-02-02T02:02:02.000Z");
      const err = await store.heartbeat(r.task_id, at).catch((e) => e);
      const after = await store.get(r.task_id);
      if (accepted) {
        expect(err).to.equal(undefined);
        expect(after?.agent_heartbeat_at).to.equal(at.toISOString());
      } else {
        expect(err).to.be.instanceOf(TaskNotInStatusError);
        expect(err.actual).to.equal(status);
        expect(after?.agent_heartbeat_at).to.equal(undefined);
      }
    });
  }

  it("update sets fields only while the task is in one of the given statuses", async () => {
    const r = record("STARTING");
    await store.create(r);
    const ok = await store.update(r.task_id, { session_id: "s-1" }, ["STARTING"]);
    expect(ok.session_id).to.equal("s-1");
    expect(ok.status).to.equal("STARTING");
    const err = await store.update(r.task_id, { session_id: "s-2" }, ["RUNNING"]).catch((e) => e);
    expect(err).to.be.instanceOf(TaskNotInStatusError);
    expect(err.message).to.contain("STARTING").and.contain("RUNNING");
    expect((await store.get(r.task_id))?.session_id).to.equal("s-1");
  });

  it("update refuses to touch store-managed attributes", async () => {
    const r = record("RUNNING");
    await store.create(r);
    const err = await store.update(r.task_id, { status: "COMPLETED" } as never, ["RUNNING"]).catch((e) => e);
    expect(err).to.be.instanceOf(RangeError);
    expect((await store.get(r.task_id))?.status).to.equal("RUNNING");
  });

  describe("listing", () => {
    const user = `user-${suffix}`;
    const created: TaskRecord[] = [];
    before(async () => {
      for (let n = 0; n < 7; n++) {
        const r = record(n % 2 ? "QUEUED" : "RUNNING", {
          user_id: user,
          created_at: new Date(Date.UTC(2025, 5, 1, 0, n)).toISOString(),
        });
        created.push(r);
        await store.create(r);
      }
    });

    it("listByUser pages through every task of the user, newest first, with opaque tokens", async () => {
      const seen: string[] = [];
      let token: string | undefined;
      let pages = 0;
      do {
        const page = await store.listByUser(user, { limit: 3, nextToken: token });
        seen.push(...page.items.map((t) => t.task_id));
        token = page.nextToken;
        if (token) expect(token).to.match(/^[A-Za-z0-9_-]+$/);
        pages++;
      } while (token && pages < 10);
      expect(seen).to.deep.equal([...created].reverse().map((t) => t.task_id));
      expect(pages).to.be.greaterThanOrEqual(3);
    });

    it("listByUser can keep only one status", async () => {
      const page = await store.listByUser(user, { status: "QUEUED", limit: 100 });
      expect(page.items.map((t) => t.task_id).sort()).to.deep.equal(
        created.filter((t) => t.status === "QUEUED").map((t) => t.task_id).sort(),
      );
    });

    it("listByStatus pages oldest first", async () => {
      const mine: string[] = [];
      let token: string | undefined;
      do {
        const page = await store.listByStatus("QUEUED", { limit: 2, nextToken: token });
        mine.push(...page.items.filter((t) => t.user_id === user).map((t) => t.task_id));
        const times = page.items.map((t) => t.created_at);
        expect(times).to.deep.equal([...times].sort());
        token = page.nextToken;
      } while (token);
      expect(mine).to.deep.equal(created.filter((t) => t.status === "QUEUED").map((t) => t.task_id));
    });

    it("a page token the store did not issue is refused clearly", async () => {
      for (const bad of ["not base64!", Buffer.from("[1,2]").toString("base64url"), Buffer.from("{oops").toString("base64url")]) {
        expect(() => decodePageToken(bad)).to.throw(InvalidPageTokenError, /nextToken/);
      }
      const err = await store.listByUser(user, { nextToken: "%%%" }).catch((e) => e);
      expect(err).to.be.instanceOf(InvalidPageTokenError);
    });
  });

  describe("events", () => {
    it("reads a task's events newest-last, across pages", async () => {
      const id = `ev-${suffix}`;
      for (let n = 0; n < 12; n++) await events.append(id, "info", `step ${n}`, { data: { n } });
      await events.append(id, "status", "done", { status: "COMPLETED" });
      const messages: string[] = [];
      let token: string | undefined;
      do {
        const page = await events.list(id, { limit: 5, nextToken: token });
        messages.push(...page.items.map((e) => e.message));
        token = page.nextToken;
      } while (token);
      expect(messages).to.deep.equal([...Array.from({ length: 12 }, (_, n) => `step ${n}`), "done"]);
    });

    it("event ids keep order within one millisecond and when the clock steps back", () => {
      const times = [5, 5, 5, 4, 6, 6].map((s) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)));
      let i = 0;
      const gen = new EventIdGenerator(() => times[i++]);
      const ids = times.map(() => gen.next().id);
      expect([...ids].sort()).to.deep.equal(ids);
      expect(new Set(ids).size).to.equal(ids.length);
    });

    it("an appended event carries its status, data and a ttl", async () => {
      const e = await events.append(`ev2-${suffix}`, "status", "moved", { status: "RUNNING", data: { a: 1 } });
      const [read] = (await events.list(`ev2-${suffix}`)).items;
      expect(read).to.deep.equal(e);
      expect(read.ttl).to.be.a("number");
    });
  });
});
